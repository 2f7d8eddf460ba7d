"""HTTP requests/s and latency of ``finbank serve`` against a minimal Litestar app, with wrk.

Run: ``.venv/bin/python benchmarks/http.py [--profiles memory,local] [--seconds 10]
[--rounds 3] [--connections 16] [--workers 1,2] [--dsn DSN]``

Starts, each as a process of its own on a free loopback port:

* ``minimal``: a Litestar app with one JSON POST route (a body of the same
  shape as a transfer, decoded and answered with 201), under the same uvicorn
  settings as ``finbank serve`` (:func:`finbank_http.app.uvicorn_config`);
* ``finbank serve`` on each ``--profiles`` profile: ``memory``, and ``local``
  (PostgreSQL at ``--dsn`` in a schema of its own, dropped afterwards; Redis
  at 127.0.0.1:6379 under a key prefix of its own, removed afterwards);
  ``local`` also with each ``--workers`` count (``finbank serve --workers N``).

Then drives each with ``wrk`` (``--connections`` connections, one wrk thread,
``--latency``): ``POST /v1/transfers`` (a new ``Idempotency-Key`` each time,
from 32 funded accounts, each to one of its own) and ``POST /v1/pix/payments``
(to the sandbox's peer key), each for ``--seconds``. Rounds are interleaved (every target and
scenario once per round), so a change in the machine's load hits all sides
alike; each figure is the median over the rounds, with the lowest and highest.
Prints requests/s, p50 and p99, the ratios to the minimal app and of two
workers to one. Responses other than 2xx are counted and reported. Figures
vary with whatever else runs on the machine (its load average is printed);
this prints, it never asserts.

This file is named ``http.py``, as the standard library's ``http`` package:
when another script of this folder runs (the folder first on ``sys.path``)
and something imports ``http``, this module hands over to the standard
library's package (the first lines below).
"""

from __future__ import annotations

import sys

if __name__ == "http":  # imported in the standard library's place: hand over to it
    import importlib.machinery
    import importlib.util
    import sysconfig

    _spec = importlib.machinery.PathFinder.find_spec("http", [sysconfig.get_paths()["stdlib"]])
    assert _spec is not None
    assert _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["http"] = _module
    _spec.loader.exec_module(_module)
elif __name__ == "__main__":
    import os as _os

    _here = _os.path.dirname(_os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if _os.path.abspath(p or ".") != _here]

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DSN = os.environ.get(
    "FINBANK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
#: transfers go from source i to target i (pairs of their own): with wrk's connections
#: spread over the pairs, two requests in flight rarely lock the same rows on PostgreSQL
SOURCE_ACCOUNTS = 32
SCENARIOS = ("transfer", "pix")


# -- the minimal app ----------------------------------------------------------------


def serve_minimal(port: int) -> None:
    """The framework's floor: one JSON POST decoded into a struct and answered (201)."""
    import msgspec
    import uvicorn
    from litestar import Litestar, post

    from finbank_adapters.settings import HttpOptions
    from finbank_http.app import uvicorn_config

    class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
        from_account_id: uuid.UUID
        to_account_id: uuid.UUID
        amount: str
        description: str | None = None

    class TransferOut(msgspec.Struct):
        transfer_id: uuid.UUID
        from_account_id: uuid.UUID
        to_account_id: uuid.UUID
        amount: str
        description: str | None

    @post("/v1/transfers", status_code=201)
    async def transfer(data: TransferIn) -> TransferOut:
        return TransferOut(
            uuid.uuid4(), data.from_account_id, data.to_account_id, data.amount, data.description
        )

    @post("/v1/pix/payments", status_code=201)
    async def pay(data: dict[str, Any]) -> dict[str, Any]:
        return {"end_to_end_id": uuid.uuid4().hex, **data}

    app = Litestar(
        [transfer, pay],
        openapi_config=None,
        logging_config=None,
        signature_namespace={"TransferIn": TransferIn, "TransferOut": TransferOut},
    )
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, HttpOptions(), "warning")).run()


# -- processes --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on {port} within 60 s")


@dataclass
class Target:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    #: per scenario: wrk's Lua script; a target without one is not driven on it
    scripts: dict[str, Path] = field(default_factory=dict)


def start(name: str, arguments: list[str], env: dict[str, str], workdir: Path, port: int) -> Target:
    log = workdir / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, *arguments],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    wait_for_port(port, process, name, log)
    return Target(name, port, process)


def stop(target: Target) -> None:
    if target.process.poll() is None:
        target.process.send_signal(signal.SIGTERM)
        try:
            target.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            target.process.kill()
            target.process.wait()


# -- the bank's side: a user, funded accounts, the wrk scripts -------------------------


async def prepare(port: int, workdir: Path, name: str) -> dict[str, Path]:
    """Sign up, log in, open and fund the accounts; wrk scripts of both scenarios."""
    import httpx

    from finbank_adapters.sandbox import PEER_KEY_EMAIL

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        body = {"username": f"bench-{secrets.token_hex(4)}", "password": secrets.token_hex(12)}
        signed = await client.post("/v1/auth/signup", json=body)
        assert signed.status_code == 201, signed.text
        login = await client.post("/v1/auth/login", json=body)
        assert login.status_code == 200, login.text
        token = login.json()["tokens"]["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        accounts: list[str] = []
        receivers: list[str] = []
        for n in range(2 * SOURCE_ACCOUNTS):
            opened = await client.post(
                "/v1/accounts", json={"holder_name": f"Bench {n}"}, headers=headers
            )
            assert opened.status_code in (200, 201), opened.text
            account_id = opened.json()["id"]
            if n % 2:
                receivers.append(account_id)
                continue
            deposited = await client.post(
                "/v1/sandbox/deposits",
                json={"account_id": account_id, "amount": "9000000.00"},
                headers=headers,
            )
            assert deposited.status_code == 201, deposited.text
            accounts.append(account_id)
    targets = list(zip(accounts, receivers, strict=True))
    transfer = [
        f'{{"from_account_id":"{a}","to_account_id":"{b}","amount":"0.01"}}' for a, b in targets
    ]
    pix = [f'{{"account_id":"{a}","key":"{PEER_KEY_EMAIL}","amount":"0.01"}}' for a in accounts]
    return {
        "transfer": write_script(
            workdir / f"{name}-transfer.lua", "/v1/transfers", token, transfer
        ),
        "pix": write_script(workdir / f"{name}-pix.lua", "/v1/pix/payments", token, pix),
    }


def write_script(path: Path, route: str, token: str, bodies: list[str]) -> Path:
    """A wrk script: POST ``route`` with the bodies in turn, a new Idempotency-Key each time."""
    lua_bodies = ",\n".join("  [[" + b + "]]" for b in bodies)
    path.write_text(
        f"""
local bodies = {{
{lua_bodies}
}}
local counter = 0
local run = "{secrets.token_hex(4)}"
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function request()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", "{route}", {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer {token}",
    ["Idempotency-Key"] = run .. "-" .. (thread_id or 0) .. "-" .. counter,
  }}, body)
end
"""
    )
    return path


# -- wrk ------------------------------------------------------------------------------------


@dataclass
class Figures:
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> Figures:
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if rate is None or p50 is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Figures(float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), failed)


def wrk(port: int, script: Path, seconds: float, connections: int) -> Figures:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk not found on PATH (Debian: apt-get install -y wrk)")
    done = subprocess.run(
        [
            binary,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{done.stderr}")
    return parse_wrk(done.stdout)


# -- the run --------------------------------------------------------------------------------


async def local_environment(dsn: str) -> tuple[dict[str, str], Any]:
    """The local profile's variables on a fresh schema and Redis prefix, and their cleanup."""
    import asyncpg
    from redis.asyncio import Redis

    from finbank_adapters.postgres.migrations import migrate, quote_ident

    schema = f"bench_http_{secrets.token_hex(4)}"
    prefix = f"finbank-bench-http:{secrets.token_hex(6)}:"
    await migrate(dsn, schema)

    async def cleanup() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await conn.close()
        redis = Redis(host="127.0.0.1", port=6379)
        try:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=500)]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()

    separator = "&" if "?" in dsn else "?"
    env = {
        "FINBANK_PROFILE": "local",
        "FINBANK_PIX_BACKEND": "postgres",
        "FINBANK_POSTGRES_DSN": f"{dsn}{separator}search_path={schema}",
        "FINBANK_REDIS_KEY_PREFIX": prefix,
        "FINBANK_JWT_SECRET": secrets.token_hex(32),
        "FINBANK_SANDBOX": "true",
    }
    return env, cleanup


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


async def run(options: argparse.Namespace) -> None:
    profiles = [p for p in options.profiles.split(",") if p]
    workers = [int(w) for w in options.workers.split(",") if w]
    common = {
        "FINBANK_HTTP_METRICS_PORT": "0",
        "FINBANK_LOG_LEVEL": "INFO",
        "FINBANK_LOG_FORMAT": "json",
    }
    targets: list[Target] = []
    cleanups: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="finbank-bench-http-") as tmp:
        workdir = Path(tmp)
        try:
            port = free_port()
            minimal = start("minimal", [__file__, "--serve-minimal", str(port)], {}, workdir, port)
            targets.append(minimal)
            minimal.scripts = await prepare_minimal(workdir)
            for profile in profiles:
                env = {**common, "FINBANK_PROFILE": profile}
                counts = [1]
                if profile == "local":
                    local_env, cleanup = await local_environment(options.dsn)
                    cleanups.append(cleanup)
                    env.update(local_env)
                    counts = workers
                for count in counts:
                    name = profile if count == 1 else f"{profile}-{count}w"
                    port = free_port()
                    arguments = ["-m", "finbank_cli", "serve", "--port", str(port)]
                    if count != 1:
                        arguments += ["--workers", str(count)]
                    target = start(name, arguments, env, workdir, port)
                    targets.append(target)
                    target.scripts = await prepare(port, workdir, name)
            await asyncio.to_thread(measure, targets, options)
        finally:
            for target in targets:
                stop(target)
            for cleanup in cleanups:
                await cleanup()


async def prepare_minimal(workdir: Path) -> dict[str, Path]:
    pairs = [(uuid.uuid4(), uuid.uuid4()) for _ in range(SOURCE_ACCOUNTS)]
    transfer = [
        f'{{"from_account_id":"{a}","to_account_id":"{b}","amount":"0.01"}}' for a, b in pairs
    ]
    pix = [f'{{"account_id":"{a}","key":"bench@example.com","amount":"0.01"}}' for a, _ in pairs]
    return {
        "transfer": write_script(workdir / "minimal-transfer.lua", "/v1/transfers", "-", transfer),
        "pix": write_script(workdir / "minimal-pix.lua", "/v1/pix/payments", "-", pix),
    }


def measure(targets: list[Target], options: argparse.Namespace) -> None:
    results: dict[tuple[str, str], list[Figures]] = {}
    loads: list[str] = []
    for target in targets:  # warm-up: imports, caches, the first connections
        for scenario in SCENARIOS:
            wrk(target.port, target.scripts[scenario], 1, options.connections)
    for n in range(options.rounds):
        loads.append(load_average())
        print(f"round {n + 1}/{options.rounds} (load average {loads[-1]}) ...", flush=True)
        for scenario in SCENARIOS:
            for target in targets:
                figures = wrk(
                    target.port, target.scripts[scenario], options.seconds, options.connections
                )
                results.setdefault((target.name, scenario), []).append(figures)
    loads.append(load_average())
    report(targets, results, options, loads)
    if options.py_spy:
        for target in targets[1:]:  # finbank's (the minimal app's would say little)
            profile(target, options)


def profile(target: Target, options: argparse.Namespace) -> None:
    """Where the process spends its time under wrk's transfers: py-spy's samples, summed."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    raw = Path(target.scripts["transfer"]).with_suffix(".stacks")
    recorder = subprocess.Popen(
        [
            *(py_spy, "record", "--format", "raw", "--subprocesses", "-r", "200"),
            *("-d", str(round(options.py_spy)), "-p", str(target.process.pid), "-o", str(raw)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wrk(target.port, target.scripts["transfer"], options.py_spy, options.connections)
    recorder.wait(timeout=options.py_spy + 60)
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")
        ]
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    print(f"\npy-spy, {target.name}, POST /v1/transfers ({total} samples): inclusive | own")
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:90]:
        print(f"  {100 * count / total:5.1f}% {100 * own.get(frame, 0) / total:5.1f}%  {frame}")


def report(
    targets: list[Target],
    results: dict[tuple[str, str], list[Figures]],
    options: argparse.Namespace,
    loads: list[str],
) -> None:
    print(
        f"\nwrk -t1 -c{options.connections} -d{options.seconds}s --latency; median of "
        f"{options.rounds} interleaved round(s) (lowest-highest); load average (1 5 15 min) "
        f"before each round and at the end: {' | '.join(loads)}"
    )
    medians: dict[tuple[str, str], float] = {}
    for scenario in SCENARIOS:
        route = "POST /v1/transfers" if scenario == "transfer" else "POST /v1/pix/payments"
        print(f"\n{route}")
        print(
            f"  {'target':12}{'req/s':>24}{'p50 ms':>10}{'p99 ms':>10}{'p99/p50':>9}{'errors':>8}"
        )
        for target in targets:
            runs = results[(target.name, scenario)]
            rate = statistics.median(r.per_second for r in runs)
            p50 = statistics.median(r.p50_ms for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            medians[(target.name, scenario)] = rate
            low, high = min(r.per_second for r in runs), max(r.per_second for r in runs)
            spread = f"({low:,.0f}-{high:,.0f})"
            errors = sum(r.errors for r in runs)
            print(
                f"  {target.name:12}{rate:>10,.0f} {spread:>13}{p50:>10.2f}{p99:>10.2f}"
                f"{p99 / p50 if p50 else 0:>9.2f}{errors:>8}"
            )
        base = medians[("minimal", scenario)]
        for target in targets:
            if target.name != "minimal":
                ratio = medians[(target.name, scenario)] / base
                print(f"  {target.name} / minimal: {ratio:.2f}x")
        for target in targets:
            match = re.fullmatch(r"(\w+)-(\d+)w", target.name)
            if match and (match.group(1), scenario) in medians:
                one = medians[(match.group(1), scenario)]
                ratio = medians[(target.name, scenario)] / one
                print(f"  {target.name} / {match.group(1)} (one worker): {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profiles", default="memory,local", help="comma-separated")
    parser.add_argument("--workers", default="1,2", help="worker counts of the local profile")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument(
        "--py-spy", type=float, default=0, metavar="SECONDS", help="then profile each target"
    )
    parser.add_argument("--serve-minimal", type=int, metavar="PORT", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_minimal:
        serve_minimal(options.serve_minimal)
        return
    asyncio.run(run(options))


if __name__ == "__main__":
    main()
