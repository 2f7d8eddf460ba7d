"""``finbank serve --workers N``: N processes, each listening on the port with a socket of its own.

uvicorn's own supervisor binds one listening socket and shares it between
its workers, which all accept from the same queue. Under a burst of new
connections one worker often takes nearly all of them: with wrk's 16
keep-alive connections, ``benchmarks/http.py`` saw 16/0, 15/1 and 14/2
between two workers, so the second added little. Here every worker binds
the port itself with ``SO_REUSEPORT`` (Linux 3.9 and later): the kernel
spreads new connections over the listening sockets by a hash of their
addresses, and a worker that stops takes its socket with it, so new
connections go to the others until it is started again.

The supervisor (this process) serves nothing itself. It starts the workers
(``spawn``: each imports the app afresh, with its own container and pools),
starts again one that exits while the others run, stops them all on
SIGINT/SIGTERM (each finishes its requests: uvicorn's graceful shutdown),
and gives up, with exit status 1, when workers keep failing right after they
start (a bad setting, a port another program holds): a crash loop would
otherwise hide the error behind restarts. A worker whose supervisor is gone
(killed with SIGKILL, which it cannot pass on) stops by itself, gracefully,
within :data:`PARENT_CHECK_SECONDS`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

log = logging.getLogger("finbank.http")

#: a worker that exits sooner than this after it started has failed to start
EARLY_EXIT_SECONDS = 5.0
#: the supervisor gives up after this many such failures in a row
MAX_EARLY_EXITS = 3
#: how long a worker has to finish its requests after SIGTERM before it is killed
GRACEFUL_SECONDS = 30.0
#: uvicorn's default listen backlog
BACKLOG = 2048


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that shares the port (``SO_REUSEPORT``)."""
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - not Linux or a BSD
        raise OSError("serve --workers needs SO_REUSEPORT (Linux 3.9 or later)")
    if port == 0:
        raise ValueError("serve --workers needs a fixed --port: with 0 each worker gets its own")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


#: how often a worker checks that its supervisor is still there (seconds)
PARENT_CHECK_SECONDS = 0.5


def stop_when_orphaned(parent: int, interval: float = PARENT_CHECK_SECONDS) -> threading.Thread:
    """A daemon thread that sends this process SIGTERM once ``parent`` is no longer its
    parent: a supervisor killed with SIGKILL (or crashed) cannot stop its workers, which
    would otherwise serve on, unsupervised, holding the port. SIGTERM is uvicorn's
    graceful shutdown: the requests in hand are finished."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="finbank-serve-parent-watch", daemon=True)
    watcher.start()
    return watcher


def run_worker(
    factory: str,
    host: str,
    port: int,
    log_level: str,
    options: Mapping[str, Any],
    parent: int | None = None,
) -> None:
    """One worker (in its own process): bind the shared port and serve ``factory``'s app
    until SIGTERM, or until ``parent`` (the supervisor's pid) is gone."""
    import uvicorn

    if parent is not None:
        stop_when_orphaned(parent)
    sock = reuseport_socket(host, port)
    config = uvicorn.Config(
        factory,
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        access_log=False,
        **options,
    )
    uvicorn.Server(config).run(sockets=[sock])


class WorkerSupervisor:
    """Runs ``workers`` processes of :func:`run_worker` until SIGINT or SIGTERM."""

    def __init__(
        self,
        factory: str,
        *,
        workers: int,
        host: str,
        port: int,
        log_level: str = "info",
        options: Mapping[str, Any] | None = None,
        graceful_seconds: float = GRACEFUL_SECONDS,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.factory = factory
        self.workers = workers
        self.host = host
        self.port = port
        self.log_level = log_level
        self.options = dict(options or {})
        self.graceful_seconds = graceful_seconds
        self._stop = threading.Event()
        self._context = multiprocessing.get_context("spawn")

    def _start(self) -> tuple[BaseProcess, float]:
        process = self._context.Process(
            target=run_worker,
            args=(self.factory, self.host, self.port, self.log_level, self.options, os.getpid()),
            name="finbank-serve-worker",
        )
        process.start()
        return process, time.monotonic()

    def stop(self, *_: object) -> None:
        """Ask the supervisor to stop its workers (what SIGINT and SIGTERM do)."""
        self._stop.set()

    def run(self) -> int:
        """Serve until stopped; 0 on a requested stop, 1 if the workers kept failing."""
        reuseport_socket(self.host, self.port).close()  # the port is free to share: fail here
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        running = [self._start() for _ in range(self.workers)]
        early_exits = 0
        status = 0
        try:
            while not self._stop.wait(0.2):
                for n, (process, started) in enumerate(running):
                    if process.is_alive():
                        continue
                    lived = time.monotonic() - started
                    early_exits = early_exits + 1 if lived < EARLY_EXIT_SECONDS else 0
                    log.warning(
                        "serve.worker_exited",
                        extra={"pid": process.pid, "exitcode": process.exitcode},
                    )
                    if early_exits >= MAX_EARLY_EXITS:
                        log.error(
                            "serve.workers_failing",
                            extra={"early_exits": early_exits, "exitcode": process.exitcode},
                        )
                        status = 1
                        self._stop.set()
                        break
                    running[n] = self._start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._shut_down([process for process, _ in running])
        return status

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()

    def _shut_down(self, processes: list[BaseProcess]) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes what it serves
        deadline = time.monotonic() + self.graceful_seconds
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
