"""The ``finbank`` command on the memory profile."""

from __future__ import annotations

import subprocess
import sys

import pytest

from finbank_http.cli import main


def test_demo_tells_the_whole_story_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Every step behaved." in out
    assert "[FAIL]" not in out
    assert "the retry is recognised as a replay" in out
    assert "saldo" in out


def test_bad_profile_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "finbank_http.cli", "demo"],
        capture_output=True,
        text=True,
        env={"FINBANK_PROFILE": "mars", "PATH": ""},
        check=False,
    )
    assert result.returncode == 2
    assert "FINBANK_PROFILE must be one of memory, local, aws" in result.stderr
