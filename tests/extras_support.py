"""Run Python in a child process as if some pip extras were not installed.

A ``sys.meta_path`` finder placed first refuses the extras' top-level modules
(``FINBANK_TEST_BLOCKED``, comma separated) the way a missing package does, so
the child sees exactly what ``pip install finbank`` without those extras gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence

from finbank_adapters._extras import EXTRA_MODULES

BLOCKER = """
import importlib.abc, os, sys

class _Blocker(importlib.abc.MetaPathFinder):
    blocked = frozenset(filter(None, os.environ.get("FINBANK_TEST_BLOCKED", "").split(",")))

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Blocker())
"""


def blocked_modules(extras: Iterable[str]) -> list[str]:
    return sorted({module for extra in extras for module in EXTRA_MODULES[extra]})


def run_without(
    extras: Iterable[str], code: str, *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child interpreter whose ``extras`` look uninstalled."""
    env = {**os.environ, "FINBANK_TEST_BLOCKED": ",".join(blocked_modules(extras))}
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def cli_without(
    extras: Iterable[str], args: Sequence[str], *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``finbank ARGS`` (through ``python -m finbank_cli``) with ``extras`` blocked."""
    code = (
        "import runpy\n"
        f"sys.argv = ['finbank', *{list(args)!r}]\n"
        "runpy.run_module('finbank_cli', run_name='__main__', alter_sys=True)\n"
    )
    return run_without(extras, code, timeout=timeout)


ALL_EXTRAS = tuple(EXTRA_MODULES)
