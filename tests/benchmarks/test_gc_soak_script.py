"""``benchmarks/gc_soak.py`` runs end to end, and its refusals are refused.

No figure is asserted (they depend on the machine); the test proves the script
starts the service with its probe, drives both wrk runs, reads a probe after
every interval and prints each column, and that its "refusals" script really
sends only requests the service refuses (the script itself stops if a good
transfer is refused).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

pytestmark = [pytest.mark.slow]


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("finbank_gc_soak", BENCHMARKS / "gc_soak.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refusals_script_turns_each_body_into_three_refused_ones(tmp_path: Path) -> None:
    soak = load_soak()
    good = '{"from_account_id":"a","to_account_id":"b","amount":"0.01"}'
    source = tmp_path / "t.lua"
    source.write_text(f"\nlocal bodies = {{\n  [[{good}]],\n  [[{good}]]\n}}\nlocal counter = 0\n")
    text = soak.refusals_script(source, tmp_path / "r.lua").read_text()
    bodies = re.findall(r"\[\[(.*?)\]\]", text)
    assert len(bodies) == 6
    assert bodies[0] == good.replace('"0.01"', '"99999999.00"')
    assert f'"to_account_id":"{soak.UNKNOWN_ACCOUNT}"' in bodies[1]
    assert bodies[2] == good[: len(good) // 2]
    assert text.endswith("local counter = 0\n")  # the rest of the script is kept


def test_wrk_counts_reads_requests_and_errors() -> None:
    soak = load_soak()
    output = "  12345 requests in 10.00s, 1.2MB read\n  Non-2xx or 3xx responses: 678\n"
    assert soak.wrk_counts(output) == (12345, 678)
    assert soak.wrk_counts("  99 requests in 1.00s, 1KB read\n") == (99, 0)


def test_soak_on_memory_prints_a_probe_per_interval() -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian: apt-get install -y wrk)")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gc_soak.py"), "--minutes", "0.05", "--interval", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [
        line.split()
        for line in done.stdout.splitlines()
        if re.match(r"\s*\d+\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+[\d.]+\s+[\d.]+", line)
    ]
    assert len(rows) >= 2, done.stdout
    for row in rows:
        ok, refused, frozen = (int(row[i].replace(",", "")) for i in (1, 2, 3))
        assert ok > 0
        assert refused > 0
        assert frozen > 10_000  # startup's heap is frozen
    assert int(rows[-1][1].replace(",", "")) > int(rows[0][1].replace(",", ""))  # cumulative
