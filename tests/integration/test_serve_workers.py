"""``finbank serve --workers N`` (``finbank_http.workers``): one ``SO_REUSEPORT`` socket a worker.

The supervisor runs in a child process of the test, on the apps of
``serve_workers_app`` (a route that names its process), so that what is
checked is the process model, whatever the bank's profile: connections
reach every worker, a worker that dies is started again and the port keeps
answering, SIGTERM stops everything, and workers that cannot start end the
supervisor with status 1 instead of a restart loop.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from finbank_http.workers import reuseport_socket

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.serve_workers_app:app"


def supervisor(
    factory: str,
    port: int,
    workers: int = 2,
    log_level: str = "warning",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    code = (
        "import sys\n"
        "from finbank_http.workers import WorkerSupervisor\n"
        f"sys.exit(WorkerSupervisor({factory!r}, workers={workers}, host='127.0.0.1',"
        f" port={port}, log_level={log_level!r}, graceful_seconds=5).run())\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )


def pid_on_a_new_connection(port: int) -> int | None:
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            answer = client.get("/pid", headers={"connection": "close"})
    except httpx.TransportError:
        return None
    assert answer.status_code == 200, answer.text
    pid: int = answer.json()["pid"]
    return pid


def pids_seen(port: int, connections: int = 64) -> set[int]:
    seen = {pid_on_a_new_connection(port) for _ in range(connections)}
    return {pid for pid in seen if pid is not None}


def wait_for(what: str, check: object, process: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the supervisor exited ({process.returncode}) before {what}: {output}")
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


@pytest.fixture
def served(unused_tcp_port: int) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = supervisor(APP, unused_tcp_port)
    try:
        wait_for(
            "both workers answered",
            lambda: len(pids_seen(unused_tcp_port, 16)) == 2,
            process,
        )
        yield process, unused_tcp_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_new_connections_reach_every_worker_and_only_them(
    served: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = served
    seen = pids_seen(port)
    # 64 connections on two reuseport sockets: all on one would be a 1-in-2^63 hash draw
    assert len(seen) == 2
    assert process.pid not in seen  # the supervisor serves nothing itself


def test_a_killed_worker_is_started_again_and_the_port_keeps_answering(
    served: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = served
    before = pids_seen(port)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # its socket went with it: the other worker takes every new connection meanwhile
    answered = [pid_on_a_new_connection(port) for _ in range(16)]
    assert None not in answered
    assert victim not in answered

    def replaced() -> bool:
        now = pids_seen(port, 32)
        return len(now) == 2 and victim not in now

    wait_for("a new worker in the dead one's place", replaced, process)
    assert process.poll() is None


def test_sigterm_stops_the_supervisor_and_its_workers(
    served: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = served
    workers = pids_seen(port)
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass


def test_workers_that_cannot_start_end_the_supervisor_with_status_1(
    unused_tcp_port: int,
) -> None:
    process = supervisor("tests.integration.serve_workers_app:broken", unused_tcp_port)
    try:
        assert process.wait(60) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = process.stdout.read() if process.stdout else ""
    assert "this app cannot start" in output


def test_a_port_another_program_holds_is_refused_before_any_worker_starts(
    unused_tcp_port: int,
) -> None:
    with socket.socket() as plain:  # no SO_REUSEPORT: the port is not shared
        plain.bind(("127.0.0.1", unused_tcp_port))
        plain.listen()
        with pytest.raises(OSError, match="in use"):
            reuseport_socket("127.0.0.1", unused_tcp_port)
        process = supervisor(APP, unused_tcp_port)
        assert process.wait(30) != 0


def test_port_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="fixed --port"):
        reuseport_socket("127.0.0.1", 0)


def test_serve_refuses_workers_on_the_memory_profile(unused_tcp_port: int) -> None:
    env = {**os.environ, "FINBANK_PROFILE": "memory", "FINBANK_HTTP_METRICS_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "finbank_cli", "serve", "--workers=2", f"--port={unused_tcp_port}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "FINBANK_PROFILE=local or aws" in done.stderr + done.stdout


def test_each_request_to_a_worker_leaves_exactly_one_access_line(unused_tcp_port: int) -> None:
    """The bank's own app in the workers, at ``finbank serve``'s log level (info): our
    access line only. uvicorn turns its own off by emptying ``uvicorn.access`` when its
    config is made, which in a worker is before the app (and our logging set-up) loads:
    a set-up that routed ``uvicorn.access`` again gave every request a second line,
    through the whole masked pipeline."""
    env = {
        "FINBANK_PROFILE": "memory",  # /health only: each worker's own bank is not used
        "FINBANK_LOG_LEVEL": "INFO",
        "FINBANK_LOG_FORMAT": "json",
        "FINBANK_HTTP_METRICS_PORT": "0",
    }
    process = supervisor("finbank_http.app:served_app", unused_tcp_port, log_level="info", env=env)
    requests = 0
    try:

        def both_answer() -> bool:
            nonlocal requests
            for _ in range(16):
                try:
                    with httpx.Client(timeout=5) as client:
                        answer = client.get(
                            f"http://127.0.0.1:{unused_tcp_port}/health",
                            headers={"connection": "close"},
                        )
                except httpx.TransportError:
                    continue
                requests += 1
                assert answer.status_code == 200, answer.text
            return requests >= 32

        wait_for("32 answers", both_answer, process, seconds=60)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = process.stdout.read() if process.stdout else ""
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("event") == "http.request"]
    assert len(access) == requests, output[-2000:]
    assert {r.get("route") or r.get("path") for r in access} == {"/health"}
    assert not [r for r in records if r.get("logger") == "uvicorn.access"], output[-2000:]


def test_workers_stop_by_themselves_when_the_supervisor_is_killed(
    served: tuple[subprocess.Popen[str], int],
) -> None:
    """SIGKILL cannot be passed on: the workers notice their parent is gone and stop
    (gracefully), instead of serving on unsupervised and holding the port."""
    process, port = served
    workers = pids_seen(port)
    assert len(workers) == 2
    process.kill()
    process.wait(10)
    deadline = time.monotonic() + 30
    alive = set(workers)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
        time.sleep(0.1)
    assert not alive, f"workers still running after their supervisor was killed: {alive}"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
