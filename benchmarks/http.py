"""HTTP requests/s and latency of ``finbank serve`` against a minimal Litestar app, with wrk.

Run: ``.venv/bin/python benchmarks/http.py [--profiles memory,local] [--seconds 10]
[--rounds 3] [--connections 16] [--threads 1] [--workers 1,2] [--dsn DSN [--dsn DSN]]
[--variant NAME:VAR=VALUE ...]``

Starts, each as a process of its own on a free loopback port:

* ``minimal``: a Litestar app with one JSON POST route (a body of the same
  shape as a transfer, decoded and answered with 201), under the same uvicorn
  settings as ``finbank serve`` (:func:`finbank_http.app.uvicorn_config`);
  when ``local`` runs, also with each ``--workers`` count (``minimal-2w``:
  the supervisor of ``finbank serve --workers 2``): the machine's own
  ceiling for that many processes, printed beside ours;
* ``finbank serve`` on each ``--profiles`` profile: ``memory``, and ``local``
  (PostgreSQL at ``--dsn`` in a schema of its own, dropped afterwards; Redis
  at 127.0.0.1:6379 under a key prefix of its own, removed afterwards);
  ``local`` also with each ``--workers`` count (``finbank serve --workers N``).
  ``--dsn`` given twice runs ``local`` on each, side by side: e.g. TCP and
  PostgreSQL's Unix socket (``postgresql://postgres@/test?host=/var/run/postgresql``,
  named ``local_unix``).

Then drives each with ``wrk`` (``--connections`` connections, ``--threads``
wrk threads, ``--latency``): ``POST /v1/transfers`` (a new ``Idempotency-Key``
each time, from 32 funded accounts, each to one of its own) and
``POST /v1/pix/payments`` (to the sandbox's peer key), each for ``--seconds``.
Rounds are interleaved (every target and scenario once per round, the targets'
order reversed every other round), so a change in the machine's load hits all
sides alike; each figure is the median over the rounds, with the lowest and
highest. Prints requests/s, p50 and p99, the ratios to the minimal app with
as many workers, and of N workers to one beside the minimal app's own ratio,
with how wrk's connections were spread over the workers halfway through each
run (``ss``; each worker listens with a ``SO_REUSEPORT`` socket of its own, so
the kernel spreads connections by a hash of their addresses: uvicorn's own
supervisor shares one socket, from which one worker took 14-16 of wrk's 16). Responses other than
2xx are counted and reported.

Rates vary with whatever else runs on the machine (its load average is
printed); what each request costs in CPU much less. So each run also reads
``/proc``: CPU milliseconds per request of the server's processes, its
PostgreSQL backends (told apart by ``application_name``), PostgreSQL's own
processes and Redis (shared with the machine's other users), wrk, and the
rest of the machine's busy time; and, from those shares, what N workers can
give over one on this machine's cores at most (a worker is one core at most;
N of them share the cores with PostgreSQL, Redis and wrk). This prints, it
never asserts.

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
import threading
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


def minimal_app() -> Any:
    """The framework's floor: one JSON POST decoded into a struct and answered (201)."""
    import msgspec
    from litestar import Litestar, post

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

    return Litestar(
        [transfer, pay],
        openapi_config=None,
        logging_config=None,
        signature_namespace={"TransferIn": TransferIn, "TransferOut": TransferOut},
    )


#: the module ``--serve-minimal`` writes beside its scripts for ``--workers`` > 1: the
#: supervisor's workers import the app by name (this file, as ``http``, cannot be)
MINIMAL_MODULE = "finbank_bench_minimal"


def serve_minimal(port: int, workers: int, app_dir: str) -> None:
    """Serve :func:`minimal_app` as ``finbank serve --workers N`` serves the bank:
    one process on :func:`finbank_http.app.uvicorn_config`, or N under the same
    supervisor (:class:`finbank_http.workers.WorkerSupervisor`: a ``SO_REUSEPORT``
    socket a worker) with the same options (:func:`finbank_http.app.uvicorn_options`)."""
    import uvicorn

    from finbank_adapters.settings import HttpOptions
    from finbank_http.app import uvicorn_config, uvicorn_options
    from finbank_http.workers import WorkerSupervisor

    if workers == 1:
        uvicorn.Server(
            uvicorn_config(minimal_app(), "127.0.0.1", port, HttpOptions(), "warning")
        ).run()
        return
    Path(app_dir, f"{MINIMAL_MODULE}.py").write_text(
        "import importlib.util, sys\n"
        f"_spec = importlib.util.spec_from_file_location({MINIMAL_MODULE + '_source'!r},"
        f" {os.path.abspath(__file__)!r})\n"
        "_module = importlib.util.module_from_spec(_spec)\n"
        "sys.modules[_spec.name] = _module\n"
        "_spec.loader.exec_module(_module)\n"
        "minimal_app = _module.minimal_app\n"
    )
    sys.path.insert(0, app_dir)  # the workers are spawned with this process's sys.path
    status = WorkerSupervisor(
        f"{MINIMAL_MODULE}:minimal_app",
        workers=workers,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        options=uvicorn_options(HttpOptions()),
    ).run()
    raise SystemExit(status)


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
    #: the ``application_name`` of its PostgreSQL sessions (their backends' CPU is its own)
    application_name: str | None = None
    #: the PostgreSQL it uses (``--dsn``)
    dsn: str | None = None


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

-- each wrk run passes a nonce of its own: keys repeated across runs would be replays
function init(args)
  if args[1] then run = run .. "-" .. args[1] end
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


# -- CPU: who spends the machine's two cores ------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")
#: the server's own PostgreSQL processes, shared by every client of the server (helpers,
#: tests): the WAL writer's flushes are the commits' (``synchronous_commit`` on)
_PG_AUX = ("walwriter", "checkpointer", "background writer", "autovacuum")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _processes() -> list[tuple[int, int, str]]:
    """``(pid, parent pid, command line)`` of every process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        found.append((int(entry), parent, command))
    return found


def machine_busy() -> tuple[float, float]:
    """CPU seconds the machine spent busy (all cores) and idle so far (``/proc/stat``)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / _TICK, (idle + iowait) / _TICK


def backend_pids(dsn: str, application_name: str) -> list[int]:
    """The PostgreSQL backends serving ``application_name``'s sessions."""
    import asyncpg

    async def query() -> list[int]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1", application_name
            )
        finally:
            await conn.close()
        return [row["pid"] for row in rows]

    return asyncio.run(query())


#: the parts a request's CPU is split into, in the order they are printed
CPU_PARTS = ("server", "postgres", "pg-aux*", "redis*", "wrk", "others*")


class CpuMeter:
    """CPU seconds by part during one wrk run: the target's processes (the supervisor and
    its workers), its PostgreSQL backends, PostgreSQL's own processes and Redis (shared
    with whatever else uses them: starred), wrk, and everything else the machine ran."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def _pids(self) -> dict[str, list[int]]:
        processes = _processes()
        ours = {self.target.process.pid}
        grew = True
        while grew:  # descendants: uvicorn's workers (and multiprocessing's helpers)
            more = {pid for pid, parent, _ in processes if parent in ours} - ours
            grew = bool(more)
            ours |= more
        parts: dict[str, list[int]] = {"server": sorted(ours), "pg-aux*": [], "redis*": []}
        for pid, _, command in processes:
            if command.startswith("postgres: ") and any(a in command for a in _PG_AUX):
                parts["pg-aux*"].append(pid)
            elif command.startswith("redis-server"):
                parts["redis*"].append(pid)
        name, dsn = self.target.application_name, self.target.dsn
        parts["postgres"] = backend_pids(dsn, name) if name and dsn else []
        return parts

    def snapshot(self) -> tuple[dict[str, dict[int, float]], float, float]:
        parts = self._pids()
        children = os.times()
        busy, _ = machine_busy()
        cpu = {part: {pid: cpu_seconds(pid) for pid in pids} for part, pids in parts.items()}
        return cpu, children.children_user + children.children_system, busy

    @staticmethod
    def spent(
        before: tuple[dict[str, dict[int, float]], float, float],
        after: tuple[dict[str, dict[int, float]], float, float],
    ) -> dict[str, float]:
        """Seconds by part between two snapshots (a process that started between them
        counts from its start; wrk is this process's only child that ends meanwhile)."""
        spent = {
            part: sum(s - before[0].get(part, {}).get(pid, 0.0) for pid, s in pids.items())
            for part, pids in after[0].items()
        }
        spent["wrk"] = after[1] - before[1]
        spent["machine"] = after[2] - before[2]
        spent["others*"] = max(0.0, spent["machine"] - sum(spent[p] for p in CPU_PARTS[:-1]))
        return spent


# -- wrk ------------------------------------------------------------------------------------


@dataclass
class Figures:
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: CPU seconds by part (:data:`CPU_PARTS`, and ``machine``) and the run's wall seconds
    cpu: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    #: wrk's connections held by each server process halfway through the run, fewest first
    spread: list[int] = field(default_factory=list)


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


def wrk(port: int, script: Path, seconds: float, connections: int, threads: int = 1) -> Figures:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk not found on PATH (Debian: apt-get install -y wrk)")
    done = subprocess.run(
        [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            secrets.token_hex(4),  # the run's own Idempotency-Keys (the script's init)
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{done.stderr}")
    return parse_wrk(done.stdout)


def connections_by_process(port: int) -> list[int]:
    """How many established connections to ``port`` each process holds, fewest first
    (``ss``; empty if it is missing)."""
    binary = shutil.which("ss")
    if binary is None:
        return []
    listed = subprocess.run(
        [binary, "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    held: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", listed):
        held[pid] = held.get(pid, 0) + 1
    return sorted(held.values())


def measured_wrk(target: Target, scenario: str, options: argparse.Namespace) -> Figures:
    """One wrk run against ``target``, with the CPU each part spent meanwhile and, for
    several workers, how wrk's connections were spread over them halfway through."""
    meter = CpuMeter(target)
    before = meter.snapshot()
    spread: list[int] = []
    sampler = threading.Timer(
        options.seconds / 2, lambda: spread.extend(connections_by_process(target.port))
    )
    started = time.monotonic()
    if workers_of(target.name) > 1:
        sampler.start()
    figures = wrk(
        target.port, target.scripts[scenario], options.seconds, options.connections, options.threads
    )
    figures.wall = time.monotonic() - started
    if sampler.is_alive() or sampler.finished.is_set():
        sampler.join()
    figures.cpu = CpuMeter.spent(before, meter.snapshot())
    figures.spread = spread
    return figures


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


def local_name(dsn: str, dsns: list[str]) -> str:
    """``local`` on the first ``--dsn``; ``local_unix`` on a Unix socket's; else numbered."""
    if dsn == dsns[0]:
        return "local"
    if "host=/" in dsn or "@/" in dsn or "%2F" in dsn:
        return "local_unix"
    return f"local_{dsns.index(dsn) + 1}"


def worker_name(base: str, count: int) -> str:
    return base if count == 1 else f"{base}-{count}w"


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
            # the machine's floor for each process count ``local`` runs with
            minimal_counts = sorted({1, *workers}) if "local" in profiles else [1]
            for count in minimal_counts:
                name = worker_name("minimal", count)
                port = free_port()
                arguments = [__file__, "--serve-minimal", str(port), "--workers", str(count)]
                minimal = start(name, [*arguments, "--app-dir", tmp], {}, workdir, port)
                targets.append(minimal)
                minimal.scripts = await prepare_minimal(workdir, name)
            runs = [(p, None) for p in profiles if p != "local"]
            if "local" in profiles:
                runs += [(local_name(dsn, options.dsn), dsn) for dsn in options.dsn]
            for profile, base_dsn in runs:
                env = {**common, "FINBANK_PROFILE": profile}
                counts = [1]
                if base_dsn is not None:
                    local_env, cleanup = await local_environment(base_dsn)
                    cleanups.append(cleanup)
                    env.update(local_env)
                    counts = workers
                for count in counts:
                    name = worker_name(profile, count)
                    application_name = None
                    target_env = env
                    if base_dsn is not None:  # its backends are told apart by this name
                        application_name = f"bench_http_{name}_{secrets.token_hex(3)}"
                        dsn = f"{env['FINBANK_POSTGRES_DSN']}&application_name={application_name}"
                        target_env = {**env, "FINBANK_POSTGRES_DSN": dsn}
                    port = free_port()
                    arguments = ["-m", "finbank_cli", "serve", "--port", str(port)]
                    if count != 1:
                        arguments += ["--workers", str(count)]
                    target = start(name, arguments, target_env, workdir, port)
                    target.application_name = application_name
                    target.dsn = base_dsn
                    targets.append(target)
                    target.scripts = await prepare(port, workdir, name)
                if base_dsn is not None and base_dsn == options.dsn[0]:
                    # one worker under other settings, measured in the same rounds
                    for variant, overrides in options.variant:
                        name = f"local_{variant}"
                        application_name = f"bench_http_{name}_{secrets.token_hex(3)}"
                        dsn = f"{env['FINBANK_POSTGRES_DSN']}&application_name={application_name}"
                        target_env = {**env, **overrides, "FINBANK_POSTGRES_DSN": dsn}
                        port = free_port()
                        arguments = ["-m", "finbank_cli", "serve", "--port", str(port)]
                        target = start(name, arguments, target_env, workdir, port)
                        target.application_name = application_name
                        target.dsn = base_dsn
                        targets.append(target)
                        target.scripts = await prepare(port, workdir, name)
            await asyncio.to_thread(measure, targets, options)
        finally:
            for target in targets:
                stop(target)
            for cleanup in cleanups:
                await cleanup()


async def prepare_minimal(workdir: Path, name: str) -> dict[str, Path]:
    pairs = [(uuid.uuid4(), uuid.uuid4()) for _ in range(SOURCE_ACCOUNTS)]
    transfer = [
        f'{{"from_account_id":"{a}","to_account_id":"{b}","amount":"0.01"}}' for a, b in pairs
    ]
    pix = [f'{{"account_id":"{a}","key":"bench@example.com","amount":"0.01"}}' for a, _ in pairs]
    return {
        "transfer": write_script(workdir / f"{name}-transfer.lua", "/v1/transfers", "-", transfer),
        "pix": write_script(workdir / f"{name}-pix.lua", "/v1/pix/payments", "-", pix),
    }


def measure(targets: list[Target], options: argparse.Namespace) -> None:
    results: dict[tuple[str, str], list[Figures]] = {}
    loads: list[str] = []
    for target in targets:  # warm-up: imports, caches, the first connections
        for scenario in SCENARIOS:
            wrk(target.port, target.scripts[scenario], 1, options.connections, options.threads)
    for n in range(options.rounds):
        loads.append(load_average())
        print(f"round {n + 1}/{options.rounds} (load average {loads[-1]}) ...", flush=True)
        for scenario in SCENARIOS:
            # every round in another order, so no target always runs after the same one
            order = targets if n % 2 == 0 else targets[::-1]
            for target in order:
                figures = measured_wrk(target, scenario, options)
                results.setdefault((target.name, scenario), []).append(figures)
    loads.append(load_average())
    report(targets, results, options, loads)
    if options.py_spy:
        for target in targets:  # finbank's (the minimal app's would say little)
            if not target.name.startswith("minimal"):
                profile(target, options)


#: py-spy's samples per second (``--py-spy``)
PY_SPY_RATE = 200


def profile(target: Target, options: argparse.Namespace) -> None:
    """Where the process spends its time under wrk's transfers: py-spy's samples, summed."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    raw = Path(target.scripts["transfer"]).with_suffix(".stacks")
    recorder = subprocess.Popen(
        [
            *(py_spy, "record", "--format", "raw", "--subprocesses", "-r", str(PY_SPY_RATE)),
            *("-d", str(round(options.py_spy)), "-p", str(target.process.pid), "-o", str(raw)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    figures = wrk(
        target.port,
        target.scripts["transfer"],
        options.py_spy,
        options.connections,
        options.threads,
    )
    recorder.wait(timeout=options.py_spy + 60)
    requests = figures.per_second * max(1, round(options.py_spy))
    print(
        "\n".join(summarize_stacks(raw.read_text(), requests, f"{target.name}, POST /v1/transfers"))
    )


def summarize_stacks(raw: str, requests: float, title: str, rows: int = 90) -> list[str]:
    """py-spy's raw stacks (``frame;frame;... count`` lines) as a table: each frame's share
    of the samples, inclusive and its own, and the same as microseconds a request.

    A sample is 1/:data:`PY_SPY_RATE` s of one process running, or runnable without a
    core, outside a wait; over ``requests`` requests, its time per request (summed over
    the workers) compares N workers with one.
    """
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")
        ]
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    ms_per_sample = 1000 / PY_SPY_RATE / requests if requests else 0.0  # ms a request
    lines = [
        f"\npy-spy, {title} ({total} samples, {requests:,.0f} requests, "
        f"{total * ms_per_sample:.3f} ms a request outside waits): inclusive | own, "
        "share and us a request"
    ]
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:rows]:
        mine = own.get(frame, 0)
        lines.append(
            f"  {100 * count / total:5.1f}% {100 * mine / total:5.1f}%  "
            f"{1000 * count * ms_per_sample:6.1f} {1000 * mine * ms_per_sample:6.1f}  {frame}"
        )
    return lines


def report(
    targets: list[Target],
    results: dict[tuple[str, str], list[Figures]],
    options: argparse.Namespace,
    loads: list[str],
) -> None:
    cores = os.cpu_count() or 1
    servers = ", ".join(redacted(d) for d in options.dsn)
    print(
        f"\nwrk -t{options.threads} -c{options.connections} -d{options.seconds}s --latency "
        f"(threads, connections); PostgreSQL at {servers}; median of "
        f"{options.rounds} interleaved round(s) (lowest-highest); load average (1 5 15 min) "
        f"before each round and at the end: {' | '.join(loads)}; {cores} cores"
    )
    medians: dict[tuple[str, str], float] = {}
    for scenario in SCENARIOS:
        route = "POST /v1/transfers" if scenario == "transfer" else "POST /v1/pix/payments"
        print(f"\n{route}")
        print(
            f"  {'target':14}{'req/s':>24}{'p50 ms':>10}{'p99 ms':>10}{'p99/p50':>9}{'errors':>8}"
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
                f"  {target.name:14}{rate:>10,.0f} {spread:>13}{p50:>10.2f}{p99:>10.2f}"
                f"{p99 / p50 if p50 else 0:>9.2f}{errors:>8}"
            )
        for target in targets:
            base = worker_name("minimal", workers_of(target.name))
            if not target.name.startswith("minimal") and (base, scenario) in medians:
                ratio = medians[(target.name, scenario)] / medians[(base, scenario)]
                print(f"  {target.name} / {base}: {ratio:.2f}x")
        for variant, _ in options.variant:  # against local, round by round
            name = f"local_{variant}"
            if (name, scenario) in medians and ("local", scenario) in medians:
                pairs = zip(results[(name, scenario)], results[("local", scenario)], strict=True)
                each = [v.per_second / b.per_second for v, b in pairs if b.per_second]
                print(
                    f"  {name} / local: {statistics.median(each):.2f}x"
                    f" (each round: {', '.join(f'{r:.2f}' for r in each)})"
                )
        for target in targets:
            match = re.fullmatch(r"(\w+)-(\d+)w", target.name)
            if match and (match.group(1), scenario) in medians:
                one = medians[(match.group(1), scenario)]
                ratio = medians[(target.name, scenario)] / one
                line = f"  {target.name} / {match.group(1)} (one worker): {ratio:.2f}x"
                floor = (f"minimal-{match.group(2)}w", scenario)
                if match.group(1) != "minimal" and floor in medians:
                    machine = medians[floor] / medians[("minimal", scenario)]
                    line += (
                        f" (the minimal app's: {machine:.2f}x; ours / its: {ratio / machine:.2f})"
                    )
                print(line)
                spreads = " ".join(
                    str(r.spread).replace(" ", "") for r in results[(target.name, scenario)]
                )
                print(f"    wrk's connections per worker halfway, each round: {spreads}")
        report_cpu(targets, results, scenario, cores)


def workers_of(name: str) -> int:
    match = re.fullmatch(r"\w+-(\d+)w", name)
    return int(match.group(1)) if match else 1


def report_cpu(
    targets: list[Target],
    results: dict[tuple[str, str], list[Figures]],
    scenario: str,
    cores: int,
) -> None:
    """CPU ms per request by part (medians over the rounds) and the machine's busy cores:
    load-independent where the rates are not. Starred parts are shared with whatever else
    runs (``others*``: the machine's busy time no listed process accounts for)."""
    print("  CPU ms per request (user + system; * shared with other clients of the machine):")
    print(
        f"  {'target':14}"
        + "".join(f"{part:>10}" for part in CPU_PARTS)
        + f"{'all':>8}{'busy cores':>12}"
    )
    bounds: list[str] = []
    most = max(workers_of(target.name) for target in targets)
    for target in targets:
        runs = results[(target.name, scenario)]
        requests = [max(1.0, r.per_second * r.wall) for r in runs]
        per_part = {
            part: statistics.median(
                1000 * r.cpu.get(part, 0.0) / n for r, n in zip(runs, requests, strict=True)
            )
            for part in CPU_PARTS
        }
        total = statistics.median(
            1000 * r.cpu.get("machine", 0.0) / n for r, n in zip(runs, requests, strict=True)
        )
        busy = statistics.median(r.cpu.get("machine", 0.0) / r.wall for r in runs if r.wall)
        print(
            f"  {target.name:14}"
            + "".join(f"{per_part[part]:>10.3f}" for part in CPU_PARTS)
            + f"{total:>8.3f}{busy:>7.2f} of {cores}"
        )
        ours = sum(per_part[part] for part in CPU_PARTS if part != "others*")
        if workers_of(target.name) == 1 and per_part["server"] and most > 1:
            bounds.append(
                f"{target.name} {max(1.0, min(most, cores * per_part['server'] / ours)):.2f}x"
            )
    if bounds:
        # one worker uses at most one core; N workers at most what the cores leave
        # once PostgreSQL, Redis and wrk had their share of each request
        print(
            f"  what {most} workers can give over one on {cores} cores, from these shares "
            f"(max(1, min({most}, cores x server / all but others*))): {', '.join(bounds)}"
        )


def variant(text: str) -> tuple[str, dict[str, str]]:
    """``--variant NAME:VAR=VALUE[,VAR=VALUE]`` as (NAME, {VAR: VALUE})."""
    name, _, assignments = text.partition(":")
    pairs = [a.partition("=") for a in assignments.split(",") if a]
    if (
        not re.fullmatch(r"[a-z0-9]+", name)
        or not pairs
        or any(not k or not e for k, e, _ in pairs)
    ):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME:VAR=VALUE[,VAR=VALUE]")
    return name, {k: v for k, _, v in pairs}


def redacted(dsn: str) -> str:
    """``dsn`` without a password."""
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", dsn)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profiles", default="memory,local", help="comma-separated")
    parser.add_argument(
        "--workers",
        default="1,2",
        help="worker counts of the local profile (the minimal app runs with each too)",
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk's threads")
    parser.add_argument(
        "--dsn",
        action="append",
        help="PostgreSQL of the local profile (default: FINBANK_TEST_POSTGRES_DSN or the "
        "local server over TCP); given again, local runs on each, interleaved (a Unix "
        "socket's is local_unix: postgresql://postgres@/test?host=/var/run/postgresql)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        type=variant,
        default=[],
        metavar="NAME:VAR=VALUE[,VAR=VALUE]",
        help="also one local worker with these settings (local_NAME), in the same rounds: "
        "e.g. g2:FINBANK_POSTGRES_LEDGER_GROUP_MAX_IN_FLIGHT=2",
    )
    parser.add_argument(
        "--py-spy", type=float, default=0, metavar="SECONDS", help="then profile each target"
    )
    parser.add_argument("--serve-minimal", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--app-dir", help=argparse.SUPPRESS)
    options = parser.parse_args()
    options.dsn = options.dsn or [DEFAULT_DSN]
    if options.serve_minimal:
        serve_minimal(options.serve_minimal, int(options.workers), options.app_dir)
        return
    asyncio.run(run(options))


if __name__ == "__main__":
    main()
