"""``finbank demo`` on the local profile: PostgreSQL (PIX stores too), Redis, Kafka (Tansu).

PIX settles asynchronously there. With the relay and the settlement worker
running (``--with-workers`` runs them in the demo's process) every chapter
behaves and the demo exits 0. Without them it waits for each outcome at
most ``--settle-timeout`` seconds, then exits 1 naming the process that is
not running: ``finbank relay`` while the event is still in the outbox,
``finbank worker pix-settlement`` once it left.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from finbank.runtime import run_relay
from finbank_adapters import metrics
from finbank_adapters.kafka.clients import create_topics
from finbank_adapters.kafka.config import KafkaSettings
from finbank_adapters.settings import Settings
from finbank_cli.demo import run_demo
from finbank_core.shared.events import AUTH_TOPIC, LEDGER_TOPIC, PIX_TOPIC
from tests.integration.kafka_fixtures import kafka_broker
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services
__all__ = ["kafka_broker"]  # fixture


@dataclass
class Local:
    settings: Settings
    env: dict[str, str]


@pytest.fixture
async def local(kafka_broker: Any) -> AsyncIterator[Local]:
    require_postgres()
    async with isolated_schema() as (_pool, schema), open_test_redis() as (_redis, prefix):
        env = {
            "FINBANK_PROFILE": "local",
            "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
            "FINBANK_REDIS_KEY_PREFIX": prefix,
            "FINBANK_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "FINBANK_KAFKA_TOPIC_PREFIX": f"demo{secrets.token_hex(3)}.",
            # --with-workers: this run's settlement worker in a group of its own
            "FINBANK_KAFKA_SETTLEMENT_GROUP": f"pix-settlement-{secrets.token_hex(4)}",
            "FINBANK_JWT_SECRET": secrets.token_hex(32),
            "FINBANK_SANDBOX": "true",
            "FINBANK_RELAY_IDLE_SECONDS": "0.05",
        }
        settings = Settings.from_env(env)
        assert settings.backends.pix == "postgres"
        assert settings.pix.inline_settlement is False
        await create_topics(
            KafkaSettings.from_settings(settings), [PIX_TOPIC, LEDGER_TOPIC, AUTH_TOPIC]
        )
        yield Local(settings, env)


async def test_the_demo_behaves_with_the_relay_and_the_worker_running(local: Local) -> None:
    out = io.StringIO()
    code = await run_demo(out, local.settings, with_workers=True, settle_timeout=60)
    text = out.getvalue()
    assert code == 0, text
    assert "FAIL" not in text
    assert "Every step behaved." in text
    assert "settled by the network" in text
    assert "the refund is DEVOLVIDO" in text


async def test_without_a_relay_the_demo_fails_naming_it(local: Local) -> None:
    out = io.StringIO()
    code = await run_demo(out, local.settings, settle_timeout=1.0)
    text = out.getvalue()
    assert code == 1, text
    assert "[FAIL]" in text
    assert "still in the outbox, so `finbank relay` is not running" in text
    assert "Every step behaved." not in text


async def test_with_a_relay_but_no_worker_the_demo_fails_naming_the_worker(local: Local) -> None:
    stop = asyncio.Event()
    relay = asyncio.create_task(run_relay(local.settings, stop))
    try:
        out = io.StringIO()
        code = await run_demo(out, local.settings, settle_timeout=2.0)
    finally:
        stop.set()
        await relay
    text = out.getvalue()
    assert code == 1, text
    assert "left the outbox, so `finbank worker pix-settlement` is not running" in text


async def test_demos_run_side_by_side_on_one_database_each_behave(local: Local) -> None:
    """Each run checks only what it did: the bank's settlement account and the due
    Pix Automático charges are shared by every run on the database, so checking the
    account's balance before and after, or running a scheduler round (which takes every
    due charge, at the run's own demo time), failed when two ran at once."""
    outs = [io.StringIO(), io.StringIO()]
    codes = await asyncio.gather(
        *(run_demo(out, local.settings, with_workers=True, settle_timeout=60) for out in outs)
    )
    for code, out in zip(codes, outs, strict=True):
        text = out.getvalue()
        assert code == 0, text
        assert "the settlement account moved by the off-us net only" in text
        assert "the retry settled it" in text
        assert "Every step behaved." in text


async def test_with_workers_their_emf_metric_lines_stay_out_of_the_story(
    local: Local, capsys: pytest.CaptureFixture[str]
) -> None:
    """The workers configure the process's metrics; in EMF (the aws profile's format)
    their lines went to stdout, in the middle of the story the demo prints there."""
    settings = Settings.from_env(
        {**local.env, "FINBANK_METRICS_FORMAT": "emf", "FINBANK_METRICS_FLUSH_SECONDS": "0.2"}
    )
    metrics.reset_for_tests()
    try:
        code = await run_demo(sys.stdout, settings, with_workers=True, settle_timeout=60)
        metrics.recorder().flush()
    finally:
        metrics.reset_for_tests()
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert "Every step behaved." in captured.out
    assert '"_aws"' not in captured.out
    assert '"_aws"' in captured.err  # they were written, to stderr
