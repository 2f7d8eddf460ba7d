"""The settlement worker's MED sweeper loop (``finbank.runtime.sweep_med_every``), on a
memory bank: passes run until stopped, and a pass that fails is logged (its error's class,
no ids) and followed by the next, which does the work. And the worker starts it, with its
setting's interval, once it consumes (not before: a worker refused for its settings says
so alone), and not at all with the setting at 0. Last, the whole path on the local stack:
a real worker sweeps a block and a case that came due by the system clock."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from finbank import Bank, open_bank, provided, runtime
from finbank.runtime import PixSettlementWorker, sweep_med_every
from finbank_adapters.kafka.clients import create_topics
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import Settings
from finbank_core.accounts.use_cases import GetBalanceQuery, OpenAccountCommand
from finbank_core.pix.med import BlockStatus
from finbank_core.pix.med.model import (
    CaseStatus,
    Decision,
    FraudSituation,
    MedCase,
    PrecautionaryBlock,
)
from finbank_core.pix.med.ports import MedRepository
from finbank_core.pix.med.use_cases import (
    AnalyseInfractionReportCommand,
    MedViewQuery,
    PlacePrecautionaryBlockCommand,
    ReceiveInfractionReportCommand,
    SweepMedCommand,
    SweepMedResult,
)
from finbank_core.pix.use_cases import SimulateIncomingPixCommand
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import PIX_TOPIC
from finbank_core.shared.money import Money
from tests.e2e.test_local_profile import local_settings
from tests.integration.kafka_fixtures import kafka_broker, kafka_test_settings
from tests.med_support import PEER_ISPB
from tests.postgres_support import isolated_schema, require_postgres
from tests.support_redis import open_test_redis

__all__ = ["kafka_broker"]  # fixtures

WAIT = 10.0


@pytest.fixture
async def bank() -> AsyncIterator[tuple[Bank, FakeClock]]:
    clock = FakeClock()
    async with open_bank(profile="memory", clock=clock) as opened:
        yield opened, clock


async def expired_block(bank: Bank, clock: FakeClock) -> PrecautionaryBlock:
    bia = await bank.accounts.open(OpenAccountCommand(owner_id="bia", holder_name="Bia"))
    incoming = await bank.pix.simulate_incoming(
        SimulateIncomingPixCommand(owner_id="bia", account_id=bia.id, amount=Money(12_34))
    )
    placed = await bank.pix.med.place_block(
        PlacePrecautionaryBlockCommand(end_to_end_id=incoming.end_to_end_id, blocked_by="engine")
    )
    clock.set(placed.block.expires_at + timedelta(seconds=1))
    return placed.block


async def block_status(bank: Bank, e2e: str) -> BlockStatus:
    # the view would release it too: read the store, not the view
    repository: MedRepository = bank.container.pix_med().med_repository()
    block = await repository.get_block(e2e)
    assert block is not None
    return block.status


async def test_the_loop_sweeps_until_stopped(bank: tuple[Bank, FakeClock]) -> None:
    opened, clock = bank
    block = await expired_block(opened, clock)
    assert await block_status(opened, block.end_to_end_id) is BlockStatus.ACTIVE
    passes: list[SweepMedResult] = []
    third = asyncio.Event()
    sweep = opened.pix.med.sweep

    async def counted(command: SweepMedCommand | None = None) -> SweepMedResult:
        passes.append(await sweep(command))
        if len(passes) == 3:
            third.set()
        return passes[-1]

    opened.pix.med.sweep = counted  # type: ignore[method-assign]
    stop = asyncio.Event()
    loop = asyncio.create_task(sweep_med_every(opened, 0.01, stop))
    await asyncio.wait_for(third.wait(), WAIT)
    stop.set()
    async with asyncio.timeout(WAIT):
        await loop  # ends once stopped, between passes
    assert passes[0].blocks == 1
    assert all(p.blocks == 0 for p in passes[1:])  # done once
    assert await block_status(opened, block.end_to_end_id) is BlockStatus.RELEASED
    view = await opened.pix.med.view(MedViewQuery(end_to_end_id=block.end_to_end_id))
    assert view.block is not None
    assert view.block.resolution == "expired"


async def test_a_failed_pass_is_logged_by_class_and_the_next_one_sweeps(
    bank: tuple[Bank, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    opened, clock = bank
    block = await expired_block(opened, clock)
    sweep = opened.pix.med.sweep
    calls = 0
    swept = asyncio.Event()

    async def down_once(command: SweepMedCommand | None = None) -> SweepMedResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ServiceUnavailable(f"the store at {block.end_to_end_id} went away")
        result = await sweep(command)
        swept.set()
        return result

    opened.pix.med.sweep = down_once  # type: ignore[method-assign]
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="finbank.runtime"):
        loop = asyncio.create_task(sweep_med_every(opened, 0.01, stop))
        await asyncio.wait_for(swept.wait(), WAIT)
        stop.set()
        async with asyncio.timeout(WAIT):
            await loop
    assert calls >= 2
    assert await block_status(opened, block.end_to_end_id) is BlockStatus.RELEASED
    logged = [r.getMessage() for r in caplog.records if r.name == "finbank.runtime"]
    assert logged[0] == "med sweep: the pass failed (ServiceUnavailable); next in 0.01 s"
    assert "med sweep: 0 case(s), 1 block(s)" in logged
    assert not any(block.end_to_end_id in line for line in logged)  # no ids, no message text


def sweeping_every(seconds: int, schema: str, prefix: str, kafka: Any) -> Settings:
    """The local profile on its PostgreSQL stores, the sweeper's interval ``seconds``."""
    settings = local_settings(schema, prefix, "http://unused", "unused", kafka, "postgres")
    pix = msgspec.structs.replace(settings.pix, med_sweep_seconds=seconds)
    return msgspec.structs.replace(settings, pix=pix)


@asynccontextmanager
async def running_worker(settings: Settings, kafka: Any) -> AsyncIterator[PixSettlementWorker]:
    """A settlement worker running (a consumer group of its own) until the block ends."""
    await create_topics(kafka, [PIX_TOPIC])
    stop = asyncio.Event()
    worker = PixSettlementWorker(
        settings, kafka=kafka, group_id=f"pix-settlement-{uuid.uuid4().hex[:8]}"
    )
    running = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)


@pytest.mark.services
@pytest.mark.parametrize("seconds", [7, 0])
async def test_the_settlement_worker_sweeps_once_it_consumes_and_not_when_told_not_to(
    seconds: int, kafka_broker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_postgres()
    kafka = kafka_test_settings(kafka_broker.bootstrap)
    started: list[tuple[Bank, float, bool]] = []
    worker: PixSettlementWorker | None = None

    async def recorded(bank: Bank, every: float, stop: asyncio.Event) -> None:
        assert worker is not None
        started.append((bank, every, worker.ready.is_set()))
        await stop.wait()

    monkeypatch.setattr(runtime, "sweep_med_every", recorded)
    async with isolated_schema() as (_pool, schema), open_test_redis() as (_redis, prefix):
        settings = sweeping_every(seconds, schema, prefix, kafka)
        async with running_worker(settings, kafka) as worker:
            await asyncio.wait_for(worker.ready.wait(), 60)
            await asyncio.sleep(0.2)  # the sweeper's task has had its turn
    if seconds == 0:
        assert started == []
    else:
        [(bank, every, ready)] = started
        assert isinstance(bank, Bank)
        assert (every, ready) == (7, True)  # from the setting, once consuming


@pytest.mark.services
async def test_a_settlement_worker_on_the_local_stack_sweeps_what_came_due(
    kafka_broker: Any,
) -> None:
    """The whole path: a worker of the local profile (PostgreSQL stores, the system clock,
    a real broker) sweeps, on its own, a block and an accepted case that came due while
    nobody read them. They were made by a bank on the same stores whose clock is 73 hours
    behind (settling inline, so that no worker is needed then): by the system clock the
    block's 72 hours and the case's 72-hour refund deadline are over."""
    require_postgres()
    kafka = kafka_test_settings(kafka_broker.bootstrap)
    async with isolated_schema() as (_pool, schema), open_test_redis() as (_redis, prefix):
        settings = sweeping_every(1, schema, prefix, kafka)
        assert settings.backends.pix == "postgres"
        then = FakeClock(datetime.now(UTC) - timedelta(hours=73))
        inline = msgspec.structs.replace(
            settings, pix=msgspec.structs.replace(settings.pix, inline_settlement=True)
        )
        async with open_bank(inline, clock=then) as earlier:
            bia = await earlier.accounts.open(OpenAccountCommand(owner_id="bia", holder_name="Bia"))
            mine = GetBalanceQuery(owner_id="bia", account_id=bia.id)
            blocked = await earlier.pix.simulate_incoming(
                SimulateIncomingPixCommand(owner_id="bia", account_id=bia.id, amount=Money(12_34))
            )
            reported = await earlier.pix.simulate_incoming(
                SimulateIncomingPixCommand(owner_id="bia", account_id=bia.id, amount=Money(5_00))
            )
            block = (
                await earlier.pix.med.place_block(
                    PlacePrecautionaryBlockCommand(
                        end_to_end_id=blocked.end_to_end_id, blocked_by="engine"
                    )
                )
            ).block
            await earlier.pix.med.receive_report(
                ReceiveInfractionReportCommand(
                    end_to_end_id=reported.end_to_end_id,
                    report_id="report-1",
                    situation=FraudSituation.SCAM,
                    reporter_ispb=PEER_ISPB,
                )
            )
            case = (
                await earlier.pix.med.analyse(
                    AnalyseInfractionReportCommand(
                        end_to_end_id=reported.end_to_end_id,
                        decision=Decision.AGREED,
                        analyst_id="analyst",
                    )
                )
            ).case
            assert case.status is CaseStatus.AGREED
            assert (await earlier.accounts.balance(mine)).available == Money(0)
        assert case.refund_deadline is not None
        assert max(block.expires_at, case.refund_deadline) < datetime.now(UTC)

        # a bank on the system clock beside the worker: it reads the stores, never the view
        async with running_worker(settings, kafka), open_bank(settings) as now:
            repository: MedRepository = await provided(now.container.pix_med().med_repository)

            async def moved_on() -> tuple[PrecautionaryBlock | None, MedCase | None]:
                while True:
                    stored_block = await repository.get_block(block.end_to_end_id)
                    stored_case = await repository.get_case(case.end_to_end_id)
                    assert stored_block is not None
                    assert stored_case is not None
                    if stored_block.status is BlockStatus.RELEASED and stored_case.lapse_finished:
                        return stored_block, stored_case
                    await asyncio.sleep(0.1)

            swept_block, swept_case = await asyncio.wait_for(moved_on(), 60)
            balance = await now.accounts.balance(mine)
    assert swept_block is not None
    assert swept_case is not None
    assert (swept_block.resolution, swept_block.released_by) == ("expired", None)
    assert swept_case.status is CaseStatus.LAPSED
    assert balance.available == balance.posted == Money(17_34)  # the money is Bia's again
