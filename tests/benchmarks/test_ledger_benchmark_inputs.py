"""``benchmarks/ledger_postgres.py``'s ``--inputs``: the cheap inputs are the same
transfers as ``uuid4``'s in all that reaches the server.

``cheap`` takes pgbench's picks from a table drawn beforehand and makes each id
from ``random.getrandbits`` without ``UUID.__init__``; the comparison with
pgbench stays honest only if the picks are the same and the ids are real,
random version-4 UUIDs (sequential ids would change the server's index work).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def ledger_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "finbank_ledger_bench_inputs", BENCHMARKS / "ledger_postgres.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_cheap_inputs_make_the_picks_of_uuid4_inputs() -> None:
    bench = ledger_benchmark()
    cheap, per_call = bench.transfer_source("cheap", 7), bench.transfer_source("uuid4", 7)
    for _ in range(3_000):
        a, b = cheap(), per_call()
        assert (a.debit_account_id, a.credit_account_id, a.amount, a.code) == (
            b.debit_account_id,
            b.credit_account_id,
            b.amount,
            b.code,
        )
        assert a.debit_account_id != a.credit_account_id
        assert 1 <= a.amount <= 100
        assert a.debit_account_id in bench.ACCOUNT_IDS[1:]
    # another seed, other picks
    other = bench.transfer_source("cheap", 8)
    firsts = [(t.debit_account_id, t.amount) for t in (other() for _ in range(50))]
    again = bench.transfer_source("cheap", 7)
    assert firsts != [(t.debit_account_id, t.amount) for t in (again() for _ in range(50))]


def test_cheap_ids_are_random_version_4_uuids() -> None:
    bench = ledger_benchmark()
    ids = [bench.transfer_source("cheap", 1)().id for _ in range(3)]
    source = bench.transfer_source("cheap", 1)
    ids += [source().id for _ in range(20_000)]
    assert len(set(ids)) == len(ids)  # none repeats, not even across sources of one seed
    for made in ids[:2_000]:
        assert type(made) is uuid.UUID
        assert made.version == 4
        assert made.variant == uuid.RFC_4122
        assert made == uuid.UUID(str(made)) == uuid.UUID(bytes=made.bytes)
        assert hash(made) == hash(uuid.UUID(int=made.int))
        assert made.is_safe is uuid.SafeUUID.unknown
    # random, not counted: consecutive ids are not in order, and every one of the
    # 122 random bits varies (a counter would leave the high bits alone)
    ordered = sum(a.int < b.int for a, b in itertools.pairwise(ids))
    assert 0.4 < ordered / (len(ids) - 1) < 0.6
    varying = 0
    for made in ids:
        varying |= made.int ^ ids[0].int
    assert bin(varying).count("1") == 122


def test_cheap_picks_come_round_again_after_the_table() -> None:
    bench = ledger_benchmark()
    source = bench.transfer_source("cheap", 3)
    first = [source() for _ in range(5)]
    for _ in range(bench.PICKS - 5):
        source()
    again = [source() for _ in range(5)]
    assert [(t.debit_account_id, t.credit_account_id, t.amount) for t in again] == [
        (t.debit_account_id, t.credit_account_id, t.amount) for t in first
    ]
    assert {t.id for t in again}.isdisjoint(t.id for t in first)


def test_another_account_range_and_an_unknown_mode() -> None:
    bench = ledger_benchmark()
    ids = [bench.account_id(n) for n in range(11)]
    source = bench.transfer_source("cheap", 1, ids, 10)
    seen = {source().debit_account_id for _ in range(1_000)}
    assert seen == set(ids[1:])
    with pytest.raises(ValueError, match="cheap, uuid4"):
        bench.transfer_source("counter", 1)
