"""``finbank worker pix-automatic`` writes its metrics where the alarms read them.

Its debits post to the ledger, whose result codes are a metric
(``LedgerResults``/``LedgerUnexpectedResults``, alarmed in
``deploy/terraform/modules/monitoring``). On AWS metrics leave a task only as
EMF lines on stdout, so the scheduler's process must configure the recorder
from its settings as the relay and the settlement worker do; otherwise its
ledger results stay in a Prometheus registry nobody scrapes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from finbank.runtime import run_pix_automatic_worker
from finbank_adapters import metrics
from finbank_adapters.settings import Settings


@pytest.fixture
def fresh_recorder() -> Iterator[None]:
    metrics.reset_for_tests()
    yield
    metrics.reset_for_tests()


@pytest.mark.usefixtures("fresh_recorder")
async def test_the_scheduler_process_writes_emf_when_its_settings_say_so() -> None:
    assert metrics.recorder().emf is False  # unconfigured: Prometheus text only
    settings = Settings.from_env(
        {
            "FINBANK_PROFILE": "memory",
            "FINBANK_METRICS_FORMAT": "emf",
            "FINBANK_METRICS_NAMESPACE": "FinbankTest",
            "FINBANK_METRICS_ENVIRONMENT": "staging",
        }
    )
    stop = asyncio.Event()
    stop.set()  # one start and a clean stop: what matters is what the process set up
    await run_pix_automatic_worker(settings, stop)
    recorder = metrics.recorder()
    assert recorder.emf is True
    assert (recorder.namespace, recorder.environment) == ("FinbankTest", "staging")
