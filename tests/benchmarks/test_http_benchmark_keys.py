"""``benchmarks/http.py``: every wrk run sends Idempotency-Keys no earlier run sent.

The benchmark runs the same wrk script for its warm-up and for every round.
Keys made from the script's fixed text and a counter starting at 0 in each
run repeated the warm-up's keys in round 1 and all of round 1's in round 2:
those requests were replays (answered from the stored transfer, nothing
moved), so the rounds after the first measured replays, not transfers.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
import threading
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def http_benchmark() -> ModuleType:
    # under a name of its own: as ``http`` it would hide the standard library's
    spec = importlib.util.spec_from_file_location("finbank_http_bench_keys", BENCHMARKS / "http.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class KeyRecorder:
    """A tiny HTTP/1.1 server answering 201 to everything, keeping each request's key."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "idempotency-key":
                        self.keys.append(value.strip())
                    elif name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    def __enter__(self) -> KeyRecorder:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def test_each_wrk_run_sends_keys_of_its_own(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian: apt-get install -y wrk; .ci/run installs it)")
    bench = http_benchmark()
    script = bench.write_script(tmp_path / "t.lua", "/v1/transfers", "token", ['{"a":1}'])
    with KeyRecorder() as recorder:
        bench.wrk(recorder.port, script, 1, 2)
        first = list(recorder.keys)
        bench.wrk(recorder.port, script, 1, 2)
        second = recorder.keys[len(first) :]
    assert first
    assert second
    assert len(set(first)) == len(first)
    assert len(set(second)) == len(second)
    assert not set(first) & set(second)
