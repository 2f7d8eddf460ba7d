"""CPU instructions per HTTP request, in one process, independent of the machine's load.

Run: ``.venv/bin/python benchmarks/http_instructions.py [--targets memory,minimal]
[--scenarios transfer,pix] [--requests 200] [--warmup 300]``

Each target runs in a process of its own under ``valgrind --tool=callgrind``
with instrumentation off; the process drives its app through uvicorn's own
``httptools`` protocol on a fake socket (request bytes in, response bytes out:
uvicorn's parsing, header checks and response writing included, no kernel or
network), warms up, then turns instrumentation on (a small C library built
here with ``callgrind.h``'s client requests), sends ``--requests`` requests one
after the other, turns it off and prints the instructions divided by the
number of requests. Targets:

* ``memory``: ``finbank_http.app.served_app`` on ``FINBANK_PROFILE=memory``,
  with the logging and metrics ``finbank serve`` configures (the access line
  goes to ``/dev/null``);
* ``minimal``: ``benchmarks/http.py``'s minimal Litestar app.

Scenarios as ``benchmarks/http.py``: ``POST /v1/transfers`` (a new
``Idempotency-Key`` each time, between funded accounts) and
``POST /v1/pix/payments``. Every answer must be 201 (checked).

Instruction counts do not move with other processes on the machine, as
requests/s do; they count the CPU work, not cache misses or waiting.
``--no-valgrind`` runs the same loop natively and prints microseconds per
request (load-dependent).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import ctypes
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_TOGGLE_SOURCE = r"""
#include <valgrind/callgrind.h>
void finbank_instr_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void finbank_instr_stop(void) {
  CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("measured");
}
"""


def toggle_library(workdir: Path) -> Path:
    """A shared library with the two client requests (compiled here with ``cc``)."""
    source = workdir / "toggle.c"
    library = workdir / "libtoggle.so"
    source.write_text(_TOGGLE_SOURCE)
    subprocess.run(
        [shutil.which("cc") or "cc", "-O1", "-shared", "-fPIC", "-o", str(library), str(source)],
        check=True,
    )
    return library


class FakeTransport:
    """The socket uvicorn's protocol writes to: collects the bytes of the response."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in ("sockname", "peername"):
            return ("127.0.0.1", 8000 if name == "sockname" else 50000)
        return default

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        pass


class Client:
    """One kept-alive connection into uvicorn's httptools protocol."""

    def __init__(self, config: Any, app_state: dict[str, Any]) -> None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        from uvicorn.server import ServerState

        self.state = ServerState()
        self.transport = FakeTransport()
        self.protocol = HttpToolsProtocol(config, self.state, app_state)
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        payload = json.dumps(body).encode() if body is not None else b""
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1:8000"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        self.transport.written.clear()
        self.protocol.data_received(raw)
        while self.state.tasks:
            await asyncio.gather(*list(self.state.tasks))
        response = bytes(self.transport.written)
        head, _, content = response.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, content


async def lifespan_started(config: Any) -> tuple[Any, dict[str, Any]]:
    from uvicorn.lifespan.on import LifespanOn

    lifespan = LifespanOn(config)
    await lifespan.startup()
    if lifespan.should_exit:
        raise RuntimeError("the app's lifespan failed to start")
    return lifespan, lifespan.state


def minimal_module() -> Any:
    spec = importlib.util.spec_from_file_location("finbank_bench_http", HERE / "http.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def prepare_bank(client: Client) -> tuple[dict[str, str], list[dict[str, Any]], list[Any]]:
    from finbank_adapters.sandbox import PEER_KEY_EMAIL

    user = {"username": f"bench-{uuid.uuid4().hex[:8]}", "password": uuid.uuid4().hex}
    status, content = await client.request("POST", "/v1/auth/signup", user, {})
    assert status == 201, content
    status, content = await client.request("POST", "/v1/auth/login", user, {})
    assert status == 200, content
    token = json.loads(content)["tokens"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    accounts: list[str] = []
    for n in range(8):
        status, content = await client.request(
            "POST", "/v1/accounts", {"holder_name": f"Bench {n}"}, headers
        )
        assert status in (200, 201), content
        accounts.append(json.loads(content)["id"])
    for account in accounts[::2]:
        status, content = await client.request(
            "POST", "/v1/sandbox/deposits", {"account_id": account, "amount": "9000000.00"}, headers
        )
        assert status == 201, content
    transfers = [
        {"from_account_id": a, "to_account_id": b, "amount": "0.01"}
        for a, b in zip(accounts[::2], accounts[1::2], strict=True)
    ]
    pix = [{"account_id": a, "key": PEER_KEY_EMAIL, "amount": "0.01"} for a in accounts[::2]]
    return headers, transfers, pix


async def run_child(options: argparse.Namespace) -> None:
    from finbank_adapters.settings import HttpOptions
    from finbank_http.app import uvicorn_config

    if options.target == "memory":
        os.environ["FINBANK_PROFILE"] = "memory"
        from finbank_http.app import served_app

        app = served_app()
    else:
        app = minimal_module().minimal_app()
    config = uvicorn_config(app, "127.0.0.1", 8000, HttpOptions(), "warning")
    config.load()
    lifespan, app_state = await lifespan_started(config)
    client = Client(config, app_state)
    if options.target == "memory":
        headers, transfers, pix = await prepare_bank(client)
    else:
        account = str(uuid.uuid4())
        headers = {}
        transfers = [{"from_account_id": account, "to_account_id": account, "amount": "0.01"}]
        pix = [{"account_id": account, "key": "x@example.com", "amount": "0.01"}]
    route, bodies = (
        ("/v1/transfers", transfers)
        if options.scenario == "transfer"
        else ("/v1/pix/payments", pix)
    )
    counter = 0

    async def one() -> None:
        nonlocal counter
        counter += 1
        status, content = await client.request(
            "POST",
            route,
            bodies[counter % len(bodies)],
            {**headers, "Idempotency-Key": f"bench-{counter}"},
        )
        if status != 201:
            raise RuntimeError(f"{route}: {status} {content[:300]!r}")

    for _ in range(options.warmup):
        await one()
    toggle = ctypes.CDLL(options.toggle) if options.toggle else None
    profiler = cProfile.Profile() if options.profile else None
    started = time.perf_counter()
    if toggle is not None:
        toggle.finbank_instr_start()
    if profiler is not None:
        profiler.enable()
    for _ in range(options.requests):
        await one()
    if profiler is not None:
        profiler.disable()
    if toggle is not None:
        toggle.finbank_instr_stop()
    elapsed = time.perf_counter() - started
    if profiler is not None:
        profiler.dump_stats(options.profile)
    print(json.dumps({"us_per_request": elapsed / options.requests * 1e6}))
    await lifespan.shutdown()


def instructions_of(output_file: Path) -> int:
    for line in output_file.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {output_file}")


def measure(target: str, scenario: str, options: argparse.Namespace, workdir: Path) -> str:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if target == "memory":
        env["FINBANK_PROFILE"] = "memory"
    child = [
        sys.executable,
        __file__,
        "--child",
        target,
        "--scenario",
        scenario,
        "--requests",
        str(options.requests),
        "--warmup",
        str(options.warmup),
    ]
    if not options.valgrind:
        done = subprocess.run(child, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        us = json.loads(done.stdout.strip().splitlines()[-1])["us_per_request"]
        return f"{us:,.0f} us/request (native, load-dependent)"
    library = toggle_library(workdir)
    out = workdir / f"callgrind.{target}.{scenario}"
    done = subprocess.run(
        [
            shutil.which("valgrind") or "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}.%p",
            *child,
            "--toggle",
            str(library),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    dumps = sorted(workdir.glob(f"callgrind.{target}.{scenario}.*"))
    measured = [d for d in dumps if "measured" in d.read_text(errors="replace")[:2000]]
    if not measured:
        raise RuntimeError(f"no measured dump among {dumps}")
    total = instructions_of(measured[0])
    if options.keep:
        kept = Path(options.keep) / f"callgrind.{target}.{scenario}.out"
        kept.write_bytes(measured[0].read_bytes())
    return f"{total / options.requests / 1000:,.0f}k instructions/request"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", default="memory,minimal")
    parser.add_argument("--scenarios", default="transfer,pix")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--no-valgrind", dest="valgrind", action="store_false")
    parser.add_argument("--keep", help="a folder to keep the callgrind files in")
    parser.add_argument(
        "--profile", help="with --child: cProfile the measured requests into this file"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--toggle", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        options.target = options.child
        if options.target == "memory":
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the access lines)
        try:  # the loop finbank serve runs on (uvicorn[standard])
            import uvloop

            loop_factory: Any = uvloop.new_event_loop
        except ImportError:
            loop_factory = None
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run_child(options))
        return
    with tempfile.TemporaryDirectory() as workdir:
        for scenario in options.scenarios.split(","):
            for target in options.targets.split(","):
                figure = measure(target, scenario, options, Path(workdir))
                print(f"{scenario:9} {target:8} {figure}", flush=True)


if __name__ == "__main__":
    main()
