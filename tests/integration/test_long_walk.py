"""The bank's invariant walk on many seeds, on request: a hunt for bugs, not a CI test.

Run, e.g.::

    .venv/bin/python -m pytest tests/integration/test_long_walk.py --walk-seeds 1-1000
    .venv/bin/python -m pytest tests/integration/test_long_walk.py --walk-seeds 1-40 \\
        --walk-backend postgres --walk-steps 1000 --walk-sweep-rate 0.05

Collected only with ``--walk-seeds`` (``tests/conftest.py``), so the suite's run is
unchanged. Each seed runs the walk of ``test_bank_invariants.py``
(:class:`~tests.integration.test_bank_invariants.SelfWalk`) with MED calls on
``--walk-med-rate`` of its steps and a second call at once on ``--walk-race-rate``
(by default 0.5 and 0.4, :class:`MedRacingWalk`'s rates, against the suite's 0.2 and
0.15: at those rates the walk found three MED money bugs that the suite's rates had
passed on 2,000 seeds) and a pass of the MED sweeper on ``--walk-sweep-rate`` of its
calls (0.02; the suite's walks sweep only at the end) and a refund request that stops
before its record on ``--walk-stop-rate`` (0.02: :class:`StoppingWalk`'s kind), checks
every invariant every 25 steps (100 off memory) and at the end, and fails with the
walk's own message. A failing seed goes into ``MED_RACING_WALKS`` (or ``WALKS``) with
its fix.
"""

from __future__ import annotations

import pytest

from finbank_adapters.settings import Settings
from tests.integration.dynamo_support import serial_moto_endpoint
from tests.integration.test_bank_invariants import SelfWalk, bank_settings, walk

__all__ = ["bank_settings", "serial_moto_endpoint"]  # fixtures


def seeds(config: pytest.Config) -> range:
    """``--walk-seeds A-B`` (or one seed ``A``) as a range."""
    text: str | None = config.getoption("walk_seeds")
    if not text:
        raise pytest.UsageError("the long walk runs on request: give --walk-seeds A-B")
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        config = metafunc.config
        metafunc.parametrize("seed", seeds(config))
        metafunc.parametrize("backend", [config.getoption("walk_backend")])


@pytest.fixture
def walk_kind(request: pytest.FixtureRequest) -> type[SelfWalk]:
    """The walk at ``--walk-med-rate`` and ``--walk-race-rate``."""
    config = request.config

    class Walk(SelfWalk):
        med_rate = config.getoption("walk_med_rate")
        race_rate = config.getoption("walk_race_rate")
        sweep_rate = config.getoption("walk_sweep_rate")
        stop_rate = config.getoption("walk_stop_rate")

    return Walk


async def test_the_walk_keeps_the_records_and_the_ledger_agreed(
    bank_settings: Settings | None,
    backend: str,
    seed: int,
    walk_kind: type[SelfWalk],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps: int = request.config.getoption("walk_steps")
    done = await walk(
        bank_settings, seed, steps, 25 if backend == "memory" else 100, monkeypatch, walk_kind
    )
    assert sum(done.values()) >= steps // 2, done  # it walked (clock moves count too)
    print(
        f"seed {seed}: swept {done['swept case']} case(s), {done['swept block']} block(s);"
        f" {done['med_refund_stopped ServiceUnavailable']} refund request(s) stopped"
    )
