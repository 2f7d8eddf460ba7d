"""``finbank worker pix-automatic`` starts on the memory profile and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def test_the_worker_runs_until_sigterm_and_exits_zero() -> None:
    env = {**os.environ, "FINBANK_PROFILE": "memory"}
    process = subprocess.Popen(
        [sys.executable, "-m", "finbank_cli", "worker", "pix-automatic"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # the signal handlers are set before this line is logged
            seen.append(line)
            if "pix-automatic: scheduling as" in line:
                break
        assert any("scheduling as" in line for line in seen), seen
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
