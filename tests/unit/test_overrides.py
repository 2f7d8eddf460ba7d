"""``open_bank(overrides=Overrides(...))`` puts your object behind any port the bank uses."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from finbank import Overrides, SettingsError, open_bank, provided
from finbank.overrides import PROVIDERS, apply_overrides
from finbank_adapters.containers import build_container
from finbank_adapters.memory import FakeClock, InMemoryEventPublisher, InMemoryLedger
from finbank_adapters.memory.pix import InMemoryKeyDirectory
from finbank_adapters.settings import Settings
from finbank_core.accounts import GetBalanceQuery, MoveCashCommand, OpenAccountCommand
from finbank_core.auth import SignUpCommand, SignUpResult
from finbank_core.pix import ListPixKeysQuery, PixKeyType, RegisterPixKeyCommand
from finbank_core.shared import Money

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_every_field_names_a_provider_and_every_provider_a_field() -> None:
    fields = {field.name for field in dataclasses.fields(Overrides)}
    assert fields == set(PROVIDERS)
    assert {"ledger", "event_publisher", "outbox", "key_directory", "rate_limit_store"} <= fields
    assert {"identity_provider", "clock", "ids", "payment_network"} <= fields


async def test_each_field_replaces_what_its_provider_gives() -> None:
    sentinels = {name: object() for name in PROVIDERS}
    container = build_container(Settings())
    apply_overrides(container, Overrides(**sentinels))  # type: ignore[arg-type]
    for name, sentinel in sentinels.items():
        assert await provided(PROVIDERS[name](container)) is sentinel, name


async def test_the_bank_writes_to_the_ledger_and_directory_it_was_given() -> None:
    clock = FakeClock(START)
    ledger = InMemoryLedger(clock, InMemoryEventPublisher())
    directory = InMemoryKeyDirectory()
    publisher = InMemoryEventPublisher()
    mine = Overrides(
        clock=clock,
        ledger=ledger,
        key_directory=directory,
        event_publisher=publisher,
    )
    async with open_bank(profile="memory", overrides=mine) as bank:
        ana = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        await bank.accounts.deposit(
            MoveCashCommand(
                account_id=ana.id, amount=Money(9_00), idempotency_key="d", operator_id="t"
            )
        )
        key = await bank.pix.register_key(
            RegisterPixKeyCommand(owner_id="ana", account_id=ana.id, key_type=PixKeyType.EVP)
        )
        balance = await bank.accounts.balance(GetBalanceQuery(owner_id="ana", account_id=ana.id))
        listed = await bank.pix.list_keys(ListPixKeysQuery(owner_id="ana"))
    [account] = await ledger.lookup_accounts([ana.id])
    assert account.balance_posted == balance.posted.cents == 9_00
    assert await directory.list_by_account(ana.id) == listed == [key]
    assert [e.type for e in publisher.published][:1] == ["ledger.account_opened"]
    assert ana.created_at == START


class RecordingIdentityProvider:
    """A stand-in identity provider: remembers sign-ups, confirms none."""

    def __init__(self) -> None:
        self.sign_ups: list[str] = []

    async def sign_up(self, request: SignUpCommand) -> SignUpResult:
        self.sign_ups.append(request.username)
        return SignUpResult(subject=f"sub-{request.username}", confirmation_required=True)

    def __getattr__(self, name: str) -> object:  # the rest of the port is not used here
        raise AttributeError(name)


async def test_an_identity_provider_override_serves_the_auth_facade() -> None:
    fake = RecordingIdentityProvider()
    async with open_bank(profile="memory", overrides=Overrides(identity_provider=fake)) as bank:  # type: ignore[arg-type]
        result = await bank.auth.sign_up(SignUpCommand(username="maria", password="x" * 12))
    assert fake.sign_ups == ["maria"]
    assert result.subject == "sub-maria"


async def test_a_shortcut_and_the_same_field_in_overrides_are_refused() -> None:
    clock = FakeClock(START)
    with pytest.raises(SettingsError, match="clock"):
        async with open_bank(profile="memory", clock=clock, overrides=Overrides(clock=clock)):
            pass  # pragma: no cover


async def test_the_shortcuts_and_overrides_add_up() -> None:
    clock = FakeClock(START)
    publisher = InMemoryEventPublisher()
    async with open_bank(
        profile="memory", clock=clock, overrides=Overrides(event_publisher=publisher)
    ) as bank:
        assert bank.clock is clock
        await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
    assert [e.occurred_at for e in publisher.published] == [START]
