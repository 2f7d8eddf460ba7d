"""The ``finbank`` command on the memory profile."""

from __future__ import annotations

import subprocess
import sys

import pytest

from finbank_cli.main import main


def test_demo_tells_the_whole_story_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Every step behaved." in out
    assert "[FAIL]" not in out
    assert "the retry is recognised as a replay" in out
    assert "saldo" in out


def test_med_sweep_on_a_fresh_bank_looks_at_nothing_and_exits_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["med", "sweep", "--page-size", "1"]) == 0
    out = capsys.readouterr().out
    assert "0 case(s) and 0 block(s) looked at, 0 and 0 failed" in out


def test_med_sweep_names_what_failed_and_exits_one() -> None:
    import io
    from datetime import UTC, datetime

    from finbank_cli.ops import report_med_sweep
    from finbank_core.pix.med.use_cases import SweepMedResult

    out = io.StringIO()
    until = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    failed = SweepMedResult(until=until, cases=2, blocks=1, failed_blocks=("E1",))
    assert report_med_sweep(out, failed) == 1
    assert out.getvalue().splitlines() == [
        "med sweep up to 2026-03-05T12:00:00+00:00: 2 case(s) and 1 block(s) looked at,"
        " 0 and 1 failed",
        "  block E1 failed: it stays due for the next pass",
    ]
    assert report_med_sweep(io.StringIO(), SweepMedResult(until=until, cases=3)) == 0


def test_bad_profile_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "finbank_cli", "demo"],
        capture_output=True,
        text=True,
        env={"FINBANK_PROFILE": "mars", "PATH": ""},
        check=False,
    )
    assert result.returncode == 2
    assert "FINBANK_PROFILE must be one of memory, local, aws" in result.stderr


def test_serve_answers_health_and_serves_the_schema(unused_tcp_port: int) -> None:
    import time
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "finbank_cli", "serve", "--port", str(unused_tcp_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{unused_tcp_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1) as response:  # noqa: S310
                    assert response.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(f"{base}/schema/openapi.json", timeout=5) as response:  # noqa: S310
            assert b"/v1/transfers" in response.read()
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("command", "env", "unavailable"),
    [
        (["dlq", "list"], {"FINBANK_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, "the message bus"),
        (
            ["outbox", "status"],
            {
                "FINBANK_PROFILE": "local",
                "FINBANK_POSTGRES_DSN": "postgresql://nobody@127.0.0.1:1/none",
            },
            "",
        ),
    ],
    ids=["dlq list", "outbox status"],
)
def test_a_server_that_does_not_answer_is_one_line_and_exit_1(
    command: list[str], env: dict[str, str], unavailable: str
) -> None:
    pytest.importorskip("aiokafka")
    pytest.importorskip("asyncpg")
    result = subprocess.run(
        [sys.executable, "-m", "finbank_cli", *command],
        capture_output=True,
        text=True,
        env={"PATH": "", "FINBANK_JWT_SECRET": "s" * 32, **env},
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # logs
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"finbank: finbank {' '.join(command)}: {unavailable}")
    assert lines[0].endswith("(service_unavailable)")
    assert "nobody" not in result.stderr  # never the DSN
