"""The settlement worker's MED sweeper loop (``finbank.runtime.sweep_med_every``), on a
memory bank: passes run until stopped, and a pass that fails is logged (its error's class,
no ids) and followed by the next, which does the work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from finbank import Bank, open_bank
from finbank.runtime import sweep_med_every
from finbank_adapters.memory import FakeClock
from finbank_core.accounts.use_cases import OpenAccountCommand
from finbank_core.pix.med import BlockStatus
from finbank_core.pix.med.model import PrecautionaryBlock
from finbank_core.pix.med.ports import MedRepository
from finbank_core.pix.med.use_cases import (
    MedViewQuery,
    PlacePrecautionaryBlockCommand,
    SweepMedCommand,
    SweepMedResult,
)
from finbank_core.pix.use_cases import SimulateIncomingPixCommand
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.money import Money

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
