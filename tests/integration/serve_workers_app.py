"""Apps for ``test_serve_workers``: a route that names the process serving it."""

from __future__ import annotations

import os

from litestar import Litestar, get


@get("/pid", sync_to_thread=False)
def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


def app() -> Litestar:
    return Litestar([pid])


def broken() -> Litestar:
    raise RuntimeError("this app cannot start (a bad setting, say)")
