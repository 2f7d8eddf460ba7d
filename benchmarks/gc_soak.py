"""What ``finbank serve``'s collector leaves behind over minutes of load, error responses included.

Run: ``.venv/bin/python benchmarks/gc_soak.py [--profiles memory,local] [--minutes 5]
[--interval 30] [--connections 4] [--dsn DSN]``

``finbank serve`` freezes what survives its collections (``finbank_http.app``:
startup's heap, then the survivors of every middle-generation and full
collection) and unfreezes and collects everything only once every
``FULL_SWEEP_SECONDS``. A cycle that becomes garbage after it was frozen waits
for that sweep. This script measures how much does, and what the sweep costs:

* starts ``finbank serve`` on each profile (``local`` on a schema and Redis
  prefix of its own, as ``benchmarks/http.py`` sets it up) with a probe loaded
  through ``sitecustomize`` (in a temporary directory on ``PYTHONPATH``; nothing
  of it is in the package);
* drives it with two ``wrk`` runs at once for ``--interval`` seconds at a time:
  good transfers, and a mix of refusals (too much money: 422; an unknown
  destination: 404; a body cut short: 400), so error responses, whose
  exceptions and tracebacks form cycles, are half the load;
* after each interval sends the server ``SIGUSR1``: the probe counts the frozen
  objects, unfreezes, collects everything (as the periodic sweep does),
  freezes again, and writes how many unreachable objects the collection found
  (garbage the frozen heap held), how long it took, the process's RSS, and the
  collector's own pauses over 5 ms since the last probe (generation and ms),
  the probe's collections excluded.

Prints one line per interval and profile. The objects counts do not depend on
the machine's load; the milliseconds do (the load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

PROBE = r"""
import gc, json, os, signal, time

_out = os.environ["GC_SOAK_PROBE_OUT"]
_pauses = []
_state = {"start": 0.0, "probing": False}


def _timed(phase, info):
    if phase == "start":
        _state["start"] = time.perf_counter()
    elif not _state["probing"]:
        ms = (time.perf_counter() - _state["start"]) * 1000
        if ms > 5.0:
            _pauses.append([info["generation"], round(ms, 1)])


gc.callbacks.insert(0, _timed)


def _probe(signum, frame):
    frozen = gc.get_freeze_count()
    _state["probing"] = True
    started = time.perf_counter()
    gc.unfreeze()
    unreachable = gc.collect()
    gc.freeze()
    ms = (time.perf_counter() - started) * 1000
    _state["probing"] = False
    with open("/proc/self/status") as status:
        rss_kb = int(status.read().split("VmRSS:")[1].split()[0])
    line = {"frozen": frozen, "unreachable": unreachable, "sweep_ms": round(ms, 1),
            "rss_mb": round(rss_kb / 1024, 1), "pauses": list(_pauses)}
    _pauses.clear()
    with open(_out, "a") as f:
        f.write(json.dumps(line) + "\n")


signal.signal(signal.SIGUSR1, _probe)
"""

UNKNOWN_ACCOUNT = "00000000-0000-4000-8000-000000000001"


def load_http_benchmark() -> ModuleType:
    """``benchmarks/http.py`` (its server start-up, accounts and wrk scripts), by path."""
    path = Path(__file__).resolve().parent / "http.py"
    spec = importlib.util.spec_from_file_location("finbank_http_benchmark", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def refusals_script(transfer_script: Path, target: Path) -> Path:
    """``transfer_script`` with its bodies replaced by refused ones (422, 404, 400 in turn)."""
    text = transfer_script.read_text()
    bodies = re.findall(r"\[\[(.*?)\]\]", text)
    refused: list[str] = []
    for body in bodies:
        refused.append(body.replace('"0.01"', '"99999999.00"'))
        refused.append(
            re.sub(r'"to_account_id":"[^"]+"', f'"to_account_id":"{UNKNOWN_ACCOUNT}"', body)
        )
        refused.append(body[: len(body) // 2])
    listed = ",\n".join("  [[" + body + "]]" for body in refused)
    target.write_text(
        re.sub(
            r"local bodies = \{.*?\n\}",
            lambda _: "local bodies = {\n" + listed + "\n}",
            text,
            flags=re.S,
        )
    )
    return target


def wrk_counts(output: str) -> tuple[int, int]:
    """(requests, non-2xx responses) from wrk's report."""
    requests = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return (int(requests.group(1)) if requests else 0, int(errors.group(1)) if errors else 0)


async def soak(profile: str, options: argparse.Namespace, bench: ModuleType, workdir: Path) -> None:
    env = {
        "FINBANK_HTTP_METRICS_PORT": "0",
        "FINBANK_LOG_LEVEL": "INFO",
        "FINBANK_LOG_FORMAT": "json",
        "FINBANK_PROFILE": profile,
    }
    cleanup: Any = None
    if profile == "local":
        local_env, cleanup = await bench.local_environment(options.dsn)
        env.update(local_env)
    probe_dir = workdir / "probe"
    probe_dir.mkdir(exist_ok=True)
    (probe_dir / "sitecustomize.py").write_text(PROBE)
    report = workdir / f"{profile}-probe.jsonl"
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(probe_dir), os.environ.get("PYTHONPATH")])
    )
    env["GC_SOAK_PROBE_OUT"] = str(report)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")
    port = bench.free_port()
    target = bench.start(
        profile, ["-m", "finbank_cli", "serve", "--port", str(port)], env, workdir, port
    )
    try:
        scripts = await bench.prepare(port, workdir, profile)
        refusals = refusals_script(scripts["transfer"], workdir / f"{profile}-refusals.lua")
        print(f"\n{profile}: {options.minutes:g} min, probes every {options.interval:g} s")
        print(
            f"{'s':>5} {'ok req':>9} {'refused':>9} {'frozen':>10} {'garbage':>8}"
            f" {'sweep ms':>9} {'RSS MB':>7}  collector pauses > 5 ms (gen:ms)  load"
        )
        started = time.monotonic()
        ok_total = refused_total = 0
        round_number = 0
        while time.monotonic() - started < options.minutes * 60:
            round_number += 1
            wrk_runs = [
                await asyncio.create_subprocess_exec(
                    wrk,
                    "-t1",
                    f"-c{options.connections}",
                    f"-d{options.interval:g}s",
                    "-s",
                    str(script),
                    f"http://127.0.0.1:{port}",
                    "--",
                    f"soak{round_number}{tag}",
                    stdout=asyncio.subprocess.PIPE,
                )
                for script, tag in ((scripts["transfer"], "a"), (refusals, "b"))
            ]
            outputs = [(await run.communicate())[0].decode() for run in wrk_runs]
            (good, good_errors), (bad, _) = (wrk_counts(output) for output in outputs)
            if good_errors:
                raise SystemExit(f"{profile}: {good_errors} good transfers were refused")
            ok_total += good
            refused_total += bad
            lines_before = len(report.read_text().splitlines()) if report.exists() else 0
            target.process.send_signal(signal.SIGUSR1)
            for _ in range(600):
                if report.exists() and len(report.read_text().splitlines()) > lines_before:
                    break
                await asyncio.sleep(0.05)
            probe = json.loads(report.read_text().splitlines()[-1])
            pauses = " ".join(f"{g}:{ms:g}" for g, ms in probe["pauses"]) or "-"
            print(
                f"{time.monotonic() - started:5.0f} {ok_total:9,} {refused_total:9,}"
                f" {probe['frozen']:10,} {probe['unreachable']:8,} {probe['sweep_ms']:9.1f}"
                f" {probe['rss_mb']:7.1f}  {pauses}  {bench.load_average()}",
                flush=True,
            )
    finally:
        bench.stop(target)
        if cleanup is not None:
            await cleanup()


async def run(options: argparse.Namespace) -> None:
    bench = load_http_benchmark()
    options.dsn = options.dsn or bench.DEFAULT_DSN
    with tempfile.TemporaryDirectory(prefix="finbank-gc-soak-") as tmp:
        for profile in [p for p in options.profiles.split(",") if p]:
            await soak(profile, options, bench, Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default="memory")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--dsn",
        default=None,
        help="PostgreSQL of the local profile (default: benchmarks/http.py's)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
