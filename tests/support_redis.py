"""A real Redis client for one test: a unique key prefix, and its keys removed afterwards.

The machine's Redis is shared: never FLUSHALL, only delete this test's keys.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from redis.asyncio import Redis

from finbank_adapters.redis.pipe import close_pipe
from tests.conftest import REQUIRE_SERVICES, require_service, service_reachable

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379


@asynccontextmanager
async def open_test_redis() -> AsyncIterator[tuple[Redis, str]]:
    """``(client, key_prefix)``; skips (or fails in CI) when Redis is unreachable."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    client = Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2, socket_connect_timeout=2)
    prefix = f"finbank-test:{uuid.uuid4().hex}:"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await close_pipe(client)
        await client.aclose()


@contextmanager
def own_redis_server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A redis-server of the test's own on a free port, killed afterwards.

    For tests that stop Redis on purpose: the shared server keeps running.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is not installed and FINBANK_REQUIRE_SERVICES=1")
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Readiness, not synchronisation: poll until the server accepts connections.
        deadline = time.monotonic() + 10
        while not service_reachable("127.0.0.1", port, timeout=0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the test's own redis-server did not start")
            time.sleep(0.02)
        yield process, port
    finally:
        process.kill()
        process.wait(timeout=10)
