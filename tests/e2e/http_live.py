"""The app served by a real uvicorn on loopback, in a thread, for clients that need a URL
(schemathesis, a generated client, a browser)."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from finbank_adapters.containers import build_container
from finbank_adapters.settings import AuthOptions, JwtOptions, Settings
from finbank_http import create_app
from finbank_http.app import uvicorn_options


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def memory_settings() -> Settings:
    """The memory profile, with a rate limit no generated test run reaches."""
    return Settings(
        jwt=JwtOptions(secret=secrets.token_hex(32)),
        auth=AuthOptions(rate_limit_per_minute=100_000, lockout_max_failures=100_000),
    )


@contextmanager
def live_server(settings: Settings | None = None) -> Iterator[str]:
    """Serve a new app (memory profile unless ``settings``) and yield its base URL."""
    app = create_app(build_container(settings or memory_settings()))
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        **uvicorn_options(app.state.container.infra.settings().http),  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
