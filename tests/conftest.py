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


# -- the long invariant walk (tests/integration/test_long_walk.py), on request only ------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("finbank long walk")
    group.addoption(
        "--walk-seeds",
        metavar="A-B",
        help="run the bank's invariant walk on seeds A..B (tests/integration/test_long_walk.py)",
    )
    group.addoption("--walk-steps", type=int, default=1_500, help="steps per walk (1,500)")
    group.addoption(
        "--walk-backend",
        choices=["memory", "postgres", "dynamodb"],
        default="memory",
        help="the stores the walk runs on (memory)",
    )
    group.addoption(
        "--walk-med-rate", type=float, default=0.5, help="share of steps that are MED (0.5)"
    )
    group.addoption(
        "--walk-race-rate",
        type=float,
        default=0.4,
        help="share of steps with a second call at once (0.4)",
    )
    group.addoption(
        "--walk-sweep-rate",
        type=float,
        default=0.02,
        help="share of calls that are a pass of the MED sweeper, racing the others (0.02)",
    )
    group.addoption(
        "--walk-stop-rate",
        type=float,
        default=0.02,
        help="share of calls that are a MED refund request stopping before its record (0.02)",
    )


def pytest_ignore_collect(collection_path: os.PathLike[str], config: pytest.Config) -> bool | None:
    """The long walk is collected only when ``--walk-seeds`` asks for it."""
    if os.path.basename(collection_path) == "test_long_walk.py":
        return not config.getoption("walk_seeds")
    return None
