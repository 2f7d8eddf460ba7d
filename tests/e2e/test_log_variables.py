"""The log variables of docs/configuration.md ("Other variables"), each set and its effect seen.

``Settings`` lets ``FINBANK_LOG_LEVEL``, ``FINBANK_LOG_FORMAT`` and
``FINBANK_LOG_MASK_AMOUNTS`` through (tests/unit/test_settings.py); the
logging pipeline of ``finbank serve`` reads them. Each case runs in a child
process, whose root logger it may change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("structlog")

PROBE = """
import logging, sys
from finbank_http.observability.logs import configure_logging
configure_logging(stream=sys.stdout)
logging.getLogger("probe").info("paid R$ 12,34 to the peer")
logging.getLogger("probe").warning("a warning")
"""


def log_lines(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FINBANK_LOG_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_by_default_info_lines_are_json_with_amounts_in_clear() -> None:
    first, second = (json.loads(line) for line in log_lines())
    assert first["event"] == "paid R$ 12,34 to the peer"
    assert (first["level"], second["level"]) == ("info", "warning")


def test_log_mask_amounts_masks_amounts_too() -> None:
    first, _ = (json.loads(line) for line in log_lines(FINBANK_LOG_MASK_AMOUNTS="1"))
    assert first["event"] == "paid R$ [AMOUNT] to the peer"


def test_log_format_console_writes_plain_lines() -> None:
    lines = log_lines(FINBANK_LOG_FORMAT="console")
    assert len(lines) == 2
    assert not lines[0].startswith("{")
    assert "[info" in lines[0]
    assert "paid R$ 12,34 to the peer" in lines[0]


def test_log_level_drops_what_is_below_it() -> None:
    lines = log_lines(FINBANK_LOG_LEVEL="WARNING")
    assert [json.loads(line)["event"] for line in lines] == ["a warning"]
