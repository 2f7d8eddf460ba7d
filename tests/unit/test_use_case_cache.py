"""The facades build each use case once and build it again when a provider under it changes
(``finbank._provided.UseCases``): an override made after the bank opened is still seen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import cast

from dependency_injector import containers, providers

from finbank import open_bank
from finbank._provided import UseCases
from finbank.bank import opened
from finbank_adapters.containers import build_container
from finbank_adapters.memory import FakeClock
from finbank_adapters.settings import Settings
from finbank_core.accounts import MoveCashCommand, OpenAccountCommand
from finbank_core.shared import Money

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


async def test_a_use_case_is_built_once_while_nothing_under_it_changes() -> None:
    async with open_bank(profile="memory") as bank:
        built = UseCases()
        transfer = bank.container.accounts().internal_transfer
        first = await built(transfer)
        assert await built(transfer) is first
        deposit = await built(bank.container.accounts().deposit)
        assert cast(object, deposit) is not first


async def test_an_override_after_the_bank_opened_is_seen_and_so_is_its_reset() -> None:
    async with open_bank(profile="memory") as bank:

        async def opened_at(owner: str) -> datetime:
            account = await bank.accounts.open(
                OpenAccountCommand(owner_id=owner, holder_name="Ana")
            )
            return account.created_at

        assert await opened_at("a1") != START
        bank.container.infra.clock.override(providers.Object(FakeClock(START)))
        assert await opened_at("a2") == START
        bank.container.infra.clock.reset_override()
        assert await opened_at("a3") != START


class _LedgerDown:
    async def get_accounts(self, ids: object) -> list[object]:
        raise OSError("connection refused")

    def __getattr__(self, name: str) -> object:
        async def down(*args: object, **kwargs: object) -> object:
            raise OSError("connection refused")

        return down


async def test_an_override_in_a_with_block_holds_only_inside_it() -> None:
    async with open_bank(profile="memory") as bank:
        ana = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        command = MoveCashCommand(
            account_id=ana.id, amount=Money(1_00), idempotency_key="d1", operator_id="t"
        )
        await bank.accounts.deposit(command)
        with bank.container.accounts.ledger.override(providers.Object(_LedgerDown())):
            try:
                await bank.accounts.deposit(
                    MoveCashCommand(
                        account_id=ana.id, amount=Money(1), idempotency_key="d2", operator_id="t"
                    )
                )
            except OSError:
                pass
            else:
                raise AssertionError("the overriding ledger was not used")
        receipt = await bank.accounts.deposit(
            MoveCashCommand(
                account_id=ana.id, amount=Money(1), idempotency_key="d3", operator_id="t"
            )
        )
        assert not receipt.replayed


class _Part:
    pass


class _Whole:
    def __init__(self, part: object) -> None:
        self.part = part


async def _opened() -> AsyncIterator[object]:
    yield object()


class _Wiring(containers.DeclarativeContainer):
    fresh = providers.Factory(_Part)
    shared = providers.Singleton(_Part)
    connection = providers.Resource(_opened)
    made_fresh = providers.Factory(_Whole, part=fresh)
    made_shared = providers.Factory(_Whole, part=shared)
    made_with_connection = providers.Factory(_Whole, part=connection)
    called = providers.Callable(_Part)
    made_called = providers.Factory(_Whole, part=called)


async def test_a_use_case_with_a_factory_or_callable_under_it_is_built_every_call() -> None:
    wiring = _Wiring()
    built = UseCases()
    one = await built(wiring.made_fresh)
    two = await built(wiring.made_fresh)
    assert one is not two
    assert one.part is not two.part
    assert await built(wiring.made_called) is not await built(wiring.made_called)
    assert await built(wiring.made_shared) is await built(wiring.made_shared)


async def test_a_use_case_whose_resource_was_shut_down_is_built_again() -> None:
    wiring = _Wiring()
    built = UseCases()
    await wiring.init_resources()  # type: ignore[misc]
    first = await built(wiring.made_with_connection)
    assert await built(wiring.made_with_connection) is first
    await wiring.shutdown_resources()  # type: ignore[misc]
    again = await built(wiring.made_with_connection)  # opens the resource again, as before
    assert again is not first
    assert again.part is not first.part
    await wiring.shutdown_resources()  # type: ignore[misc]


async def test_a_bank_kept_across_its_container_opened_again_builds_its_use_cases_again() -> None:
    container = build_container(Settings())
    async with opened(container) as bank:
        first = await bank.auth._built(container.auth().authenticate)
        assert await bank.auth._built(container.auth().authenticate) is first
    async with opened(container):
        assert await bank.auth._built(container.auth().authenticate) is not first


async def test_a_provider_overridden_by_one_with_its_own_dependencies_is_followed() -> None:
    wiring = _Wiring()
    built = UseCases()
    first = await built(wiring.made_shared)
    replacement = providers.Singleton(_Part)
    wiring.shared.override(replacement)
    second = await built(wiring.made_shared)
    assert second is not first
    assert second.part is replacement()
    replacement.override(providers.Object("deeper"))
    assert (await built(wiring.made_shared)).part == "deeper"
    wiring.shared.reset_override()
    assert (await built(wiring.made_shared)).part is wiring.shared()
