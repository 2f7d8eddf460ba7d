"""Shared test plumbing: service reachability and the FINBANK_REQUIRE_SERVICES switch."""

from __future__ import annotations

import os
import socket

import pytest

REQUIRE_SERVICES = os.environ.get("FINBANK_REQUIRE_SERVICES") == "1"


def service_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) when a real server the test needs is not reachable."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and FINBANK_REQUIRE_SERVICES=1")
    pytest.skip(message)
