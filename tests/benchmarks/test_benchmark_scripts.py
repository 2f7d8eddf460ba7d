"""The benchmark scripts run end to end with tiny parameters and print their figures.

They measure nothing here (no timing is asserted): these tests prove the
scripts still start their servers, drive them, parse what pgbench and wrk
say and print every figure, ratio and error count they promise. Both need
PostgreSQL (and the HTTP one Redis and ``wrk``).

Each run works in databases of its own, named afresh (``scratch_databases``),
and drops them afterwards, passed or failed, with ``WITH (FORCE)`` so a
script killed at its timeout, still connected, leaves nothing behind either.
The scripts are run as they are: only the database names they are given
differ from a manual run.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.postgres_support import POSTGRES_DSN, require_postgres
from tests.support_redis import REDIS_HOST, REDIS_PORT

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

pytestmark = [pytest.mark.services, pytest.mark.slow]


def run_script(name: str, *arguments: str, timeout: float = 420) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def _drop_databases(names: list[str]) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        for name in names:  # names of our making: letters, digits and underscores
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch_databases(*prefixes: str) -> Iterator[list[str]]:
    """A fresh database name per prefix, each dropped on the way out if it was created.

    The script under test may create them (``ledger_postgres.py`` does) or the
    caller (``created_database``); either way they are dropped, even when the
    test fails or the script was killed at its timeout.
    """
    names = [f"{prefix}_{secrets.token_hex(4)}" for prefix in prefixes]
    try:
        yield names
    finally:
        asyncio.run(_drop_databases(names))


def created_database(name: str) -> str:
    """Create database ``name`` on the test server; its DSN."""

    async def create() -> None:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return urlunsplit(urlsplit(POSTGRES_DSN)._replace(path=f"/{name}"))


def load_http_benchmark() -> ModuleType:
    """``benchmarks/http.py`` under a name of its own (as ``http`` it would hand over)."""
    spec = importlib.util.spec_from_file_location("finbank_http_benchmark", BENCHMARKS / "http.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_ledger_postgres_prints_every_side_and_its_ratios() -> None:
    require_postgres()
    if shutil.which("pgbench") is None:
        pytest.skip("pgbench is not installed (package postgresql-client)")

    with scratch_databases("finbank_smoke_pgbench", "finbank_smoke_ledger") as (tpcb, ledger):
        out = run_script(
            "ledger_postgres.py",
            *("--seconds", "1", "--rounds", "2", "--clients", "4,5", "--dsn", POSTGRES_DSN),
            *("--pgbench-db", tpcb, "--ledger-db", ledger, "--inputs", "cheap,uuid4"),
        )

    for clients in (4, 5):
        section = out.split(f"\n{clients} client(s):")[1]
        for label in (
            "pgbench tpcb-like -M prepared",
            "pgbench ledger_create_transfer (floor)",
            "asyncpg alone, prepared, 1/call",
            "ledger from Python, 1/call",
            "ledger from Python, 100/call",
            "ledger from Python, 1/call (uuid4 per call)",
        ):
            line = next(line for line in section.splitlines() if label in line)
            figures = re.findall(r"[0-9][0-9,]*(?:\.[0-9]+)?", line.split(label)[1])
            assert float(figures[0].replace(",", "")) > 0, line
    assert re.search(r"ledger from Python, 1/call .* [0-9.]+x floor +[0-9.]+x tpcb", out)
    # the driver alone beside it, with the server's CPU of its own connections
    assert re.search(r"asyncpg alone, prepared, 1/call .* [0-9.]+x floor +[0-9.]+x tpcb", out)
    assert re.search(r"asyncpg alone, prepared, 1/call +client +[0-9]+ .* server +[0-9]+", out)
    assert re.search(
        r"what bounds it: asyncpg alone \(the same statement, nothing of ours\) reaches "
        r"[0-9.]+x the floor; the ledger 1/call \(cheap inputs\) is [0-9.]+x asyncpg alone",
        out,
    )
    # group commit beside it, at each default cap, with its ratios and its own goal line
    for cap in (1, 2):
        assert re.search(rf"ledger 1/call, grouped at {cap} in flight .* [0-9.]+x floor", out)
        assert re.search(rf"with group commit at {cap} in flight .*: [0-9.]+x the floor", out)
    assert "interleaved round(s)" in out
    assert out.count("round ") >= 2  # each round announced with its load average
    # what the client's figures include, said for each --inputs mode, each with its goals
    assert "the Python client's rate and CPU include making each call's inputs:" in out
    assert "\n  cheap: a Transfer per call" in out
    assert "\n  uuid4 (uuid4 per call): a Transfer per call; its id from uuid.uuid4()" in out
    for mode in ("cheap", "uuid4"):
        # judged at the goals' 4 clients, not at the run's most (5)
        assert re.search(
            rf"goals at 4 clients, 1 transfer/call \({mode} inputs\): "
            r">= 0.9x the floor: [0-9.]+x; >= 0.9x TPC-B prepared: [0-9.]+x",
            out,
        ), mode
    # each side's client CPU per transaction, and the ledger's server CPU when /proc tells
    for label in ("pgbench ledger_create_transfer (floor)", "ledger from Python, 1/call"):
        assert re.search(rf"{re.escape(label)} +client +[0-9]+ \([0-9]+-[0-9]+; user", out), label
    # every side's machine-wide CPU per transaction and its client's preemptions
    machine_section = out.split("\n5 client(s):")[1].split("CPU of every process")[1]
    for label in (
        "pgbench tpcb-like -M prepared",
        "pgbench ledger_create_transfer (floor)",
        "ledger from Python, 1/call",
        "ledger from Python, 100/call",
    ):
        found = re.search(
            rf"{re.escape(label)} +machine +([0-9]+) us/transaction +client preempted "
            r"([0-9.]+)/call +WAL +([0-9]+) B/transaction",
            machine_section,
        )
        assert found is not None, label
        assert int(found.group(1)) > 0, label  # a transaction costs some CPU somewhere
        # every side writes. (Which writes more is not asserted: in 1-second runs a
        # checkpoint makes the next first touch of every page write the whole page.)
        assert int(found.group(3)) > 0, label


@pytest.mark.parametrize("inputs", ["cheap", "uuid4"])
def test_ledger_instructions_runs_each_inputs_mode(inputs: str) -> None:
    """Natively (``--no-valgrind``): every call answered ``ok`` (the script checks) and
    the figures printed with the inputs mode they include."""
    require_postgres()
    with scratch_databases("finbank_smoke_instr") as (ledger,):
        out = run_script(
            "ledger_instructions.py",
            *("--no-valgrind", "--calls", "200", "--warmup", "20", "--inputs", inputs),
            *("--dsn", POSTGRES_DSN, "--ledger-db", ledger),
        )
    assert re.search(
        rf"4 clients, events 0, {inputs} inputs: [0-9,]+ us/call wall, client CPU", out
    ), out


def test_ledger_group_cost_prints_each_size_and_the_fit() -> None:
    """Every call answered ``ok`` (the script checks); each size cap printed with groups no
    bigger than it, and the fit.

    4 callers, one call in flight: groups of about 3 under a cap of 4, but how many
    callers wait behind each call depends on scheduling. What always holds: at the start
    of the measured calls the 4 callers are released together, so 3 of them wait behind
    the first and some group is bigger than one; and no group passes its cap.

    A short run may see no CPU tick at all: the script prints 0.0 then (it once printed
    -0.0, a rounding error of its sum, which this row's pattern did not match)."""
    require_postgres()
    with scratch_databases("finbank_smoke_group") as (ledger,):
        out = run_script(
            "ledger_group_cost.py",
            *("--sizes", "4,2", "--callers", "4", "--calls", "40", "--rounds", "1"),
            *("--dsn", POSTGRES_DSN, "--ledger-db", ledger),
        )
    rows = dict(re.findall(r"^\s+([42])\s+([0-9.]+)\s+[0-9.]+ \(", out, re.MULTILINE))
    assert set(rows) == {"4", "2"}, out
    assert 1.0 < float(rows["2"]) <= 2.0, out
    assert 1.0 < float(rows["4"]) <= 4.0, out
    assert re.search(r"a = -?[0-9.]+ us a transfer, b = -?[0-9.]+ us a grouped call", out), out


def test_http_drives_the_service_and_the_minimal_app_without_errors() -> None:
    require_postgres()
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian: apt-get install -y wrk)")
    from tests.conftest import require_service

    require_service("Redis", REDIS_HOST, REDIS_PORT)

    with scratch_databases("finbank_smoke_http") as (database,):
        dsn = created_database(database)
        out = run_script(
            "http.py",
            *("--profiles", "memory,local", "--workers", "1,2", "--seconds", "1"),
            *("--rounds", "1", "--connections", "2", "--dsn", dsn),
            *("--variant", "g2:FINBANK_POSTGRES_LEDGER_GROUP_MAX_IN_FLIGHT=2"),
        )

    targets = {"minimal", "minimal-2w", "memory", "local", "local-2w", "local_g2"}
    assert "wrk -t1 -c2 " in out  # wrk's threads and connections are said
    for route in ("POST /v1/transfers", "POST /v1/pix/payments"):
        section = out.split(f"\n{route}\n")[1].split("\n\n")[0]
        rates, cpu = section.split("CPU ms per request")
        lines = [line.split() for line in rates.splitlines()[1:] if line.strip()]
        rows = {line[0]: line for line in lines if not any(":" in word for word in line)}
        assert set(rows) == targets, section
        for name, row in rows.items():
            assert float(row[1].replace(",", "")) > 0, row  # req/s
            assert row[-1] == "0", f"{name} answered errors: {row}"  # non-2xx responses
        ratios = ("memory / minimal", "local / minimal", "local-2w / minimal-2w")
        for ratio in (*ratios, "local_g2 / minimal"):
            assert re.search(re.escape(ratio) + r": [0-9.]+x", section), section
        # the variant against local, the same rounds paired
        assert re.search(r"local_g2 / local: [0-9.]+x \(each round: [0-9.]+\)", section)
        # two workers beside the minimal app's own two workers
        assert re.search(
            r"local-2w / local \(one worker\): [0-9.]+x \(the minimal app's: [0-9.]+x; "
            r"ours / its: [0-9.]+\)",
            section,
        ), section
        assert re.search(r"wrk's connections per worker halfway, each round: \[", section)
        # CPU per request by part: the server always spent some; only local has backends
        parts = {line.split()[0]: line.split() for line in cpu.splitlines()[2:] if " of " in line}
        assert set(parts) == targets, cpu
        for name, row in parts.items():
            server, postgres = float(row[1]), float(row[2])
            assert server > 0, row
            assert (postgres > 0) == name.startswith("local"), row
        assert re.search(r"what 2 workers can give over one .*: minimal [0-9.]+x", cpu), cpu


def test_the_http_benchmarks_profile_says_each_frames_time_a_request() -> None:
    """``--py-spy``'s table from py-spy's raw stacks: shares, and microseconds a request
    (a sample is 1/PY_SPY_RATE s), so that N workers' profile compares with one's."""
    module = load_http_benchmark()
    assert module.PY_SPY_RATE == 200
    raw = (
        "run (runners.py:118);handle (app.py:10);write (pipe.py:153) 30\n"
        "run (runners.py:118);handle (app.py:10) 10\n"
        "run (runners.py:118) 60\n"
    )
    title, *rows = module.summarize_stacks(raw, 1000, "local, POST /v1/transfers")
    # 100 samples of 5 ms over 1,000 requests: 0.5 ms a request
    assert title == (
        "\npy-spy, local, POST /v1/transfers (100 samples, 1,000 requests, 0.500 ms a "
        "request outside waits): inclusive | own, share and us a request"
    )
    table = {row.split()[-2]: [float(v.rstrip("%")) for v in row.split()[:4]] for row in rows}
    assert table == {
        "run": [100.0, 60.0, 500.0, 300.0],
        "handle": [40.0, 10.0, 200.0, 50.0],
        "write": [30.0, 30.0, 150.0, 150.0],
    }
    assert [row.split()[-2] for row in rows] == ["run", "handle", "write"]  # by inclusive


def test_the_http_benchmark_parses_wrk_and_leaves_the_standard_http_to_others() -> None:
    module = load_http_benchmark()
    output = """Running 1s test @ http://127.0.0.1:1
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    2.40ms
     99%   14.31ms
  2000 requests in 1.00s, 1.2MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   1999.50
"""
    figures = module.parse_wrk(output)
    assert (figures.per_second, figures.p50_ms, figures.p99_ms, figures.errors) == (
        1999.5,
        0.812,
        14.31,
        3,
    )
    with pytest.raises(RuntimeError, match="unexpected wrk output"):
        module.parse_wrk("wrk: connection refused")
    # another script of the folder runs with the folder first on sys.path: `import http`
    # there must still be the standard library's package (httpx and Litestar need it)
    probe = (
        f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); "
        "import http.client, httpx, sysconfig; "
        "stdlib = sysconfig.get_paths()['stdlib']; "
        "print(http.__file__.startswith(stdlib), http.HTTPStatus(201).phrase)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "Created"]


def test_pix_e2e_settles_every_payment_through_the_processes_and_prints_their_costs() -> None:
    # serve, relay and worker as processes over Tansu (from the dev stack), PostgreSQL
    # and Redis: the shape the held-out run uses, at a tiny size
    require_postgres()
    from tests.conftest import require_service

    require_service("Redis", REDIS_HOST, REDIS_PORT)
    with scratch_databases("finbank_smoke_pix") as (database,):
        dsn = created_database(database)
        out = run_script(
            "pix_e2e.py",
            *("--processes", "--statements", "--payments", "40", "--concurrency", "4"),
            *("--dsn", dsn),
        )
    settled = re.search(r"completed end to end \(SETTLED\): +([0-9.]+) payments/s", out)
    assert settled is not None, out
    assert float(settled.group(1)) > 0, out
    assert re.search(r"request -> SETTLED +p50 +[0-9.]+ ms +p99 +[0-9.]+ ms", out), out
    cpu = out.split("CPU ms per payment")[1].split("load average")[0]
    roles = {line.rsplit(None, 1)[0].strip() for line in cpu.splitlines()[1:] if line.strip()}
    for role in ("serve", "relay", "worker", "postgres (worker)", "all of them"):
        assert role in roles, cpu
    # every process's statements per payment; the relay claims and marks at least once
    statements = out.split("PostgreSQL statements per payment")[1]
    for role in ("serve", "relay", "worker"):
        assert re.search(rf"^    {role} +[0-9.]+$", statements, re.MULTILINE), statements
    relay = statements.split("    relay ")[1].split("    worker")[0]
    assert "DELETE FROM outbox" in relay, relay
