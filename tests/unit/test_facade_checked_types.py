"""Every facade method passes its command or query through ``checked_types`` first.

A ``msgspec.Struct`` built in Python does not check its fields' types; the facades
are where an embedding application hands the core its commands, so each of them
checks (and an id given as the text of its UUID becomes that UUID) before the use
case runs. The first test finds every facade method by introspection, new ones
included, and calls it with ``checked_types`` replaced by a spy that stops the call:
a method that forgets it runs on and fails the test. The rest pin what
``checked_types`` does.
"""

from __future__ import annotations

import inspect
import typing
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
import pytest

import finbank
from finbank import Bank, open_bank
from finbank_core.shared import checked_types
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.money import Money

#: methods that take no command or query (sandbox simulations by plain values, a check
#: the HTTP layer asks for with a principal it already holds)
NOT_COMMANDS = {
    "simulate_donor_answer",
    "simulate_incoming_claim",
    "simulate_peer_completion",
    "simulate_peer_analysis",
    "simulate_peer_return",
    "require_step_up",
    "yesterday",
}


class _Stopped(Exception):
    pass


@pytest.fixture
async def bank() -> AsyncIterator[Bank]:
    async with open_bank(profile="memory") as opened:
        yield opened


def _facade_methods(bank: Bank) -> list[tuple[str, Any]]:
    facades = {
        "accounts": bank.accounts,
        "pix": bank.pix,
        "pix.automatic": bank.pix.automatic,
        "pix.med": bank.pix.med,
        "pix.claims": bank.pix.claims,
        "pix.limits": bank.pix.limits,
        "auth": bank.auth,
        "reconciliation": bank.reconciliation,
    }
    found = []
    for prefix, facade in facades.items():
        for name, method in inspect.getmembers(facade, inspect.iscoroutinefunction):
            if not name.startswith("_") and name not in NOT_COMMANDS:
                found.append((f"{prefix}.{name}", method))
    return found


async def test_every_facade_method_checks_its_commands_types_first(
    bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def spy(command: object, path: str = "") -> object:
        seen.append(command)
        raise _Stopped

    for module in ("accounts", "auth", "automatic", "claims", "med", "pix", "reconciliation"):
        monkeypatch.setattr(getattr(finbank, module), "checked_types", spy)
    methods = _facade_methods(bank)
    assert len(methods) > 80  # every facade: a rename that hides them fails here
    missing = []
    for name, method in methods:
        marker = object()
        try:
            await method(marker)
        except _Stopped:
            if seen[-1] is marker:
                continue
            missing.append(name)
        except Exception:
            missing.append(name)
        else:
            missing.append(name)
    assert missing == []


class _Inner(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    when: date


class _Command(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    amount: Money
    at: datetime
    name: Annotated[str, msgspec.Meta(max_length=5)]
    flag: bool = False
    other_id: uuid.UUID | None = None
    inner: _Inner | None = None
    tags: list[str] = []  # not a simple type: left alone


def _command(**changes: Any) -> _Command:
    good = _Command(
        account_id=uuid.uuid4(),
        amount=Money(1_00),
        at=datetime(2026, 1, 1, tzinfo=UTC),
        name="Ana",
        inner=_Inner(count=1, when=date(2026, 1, 1)),
    )
    return msgspec.structs.replace(good, **changes)


def test_a_well_typed_command_is_returned_as_it_is() -> None:
    command = _command()
    assert checked_types(command) is command
    bare = _command(inner=None, other_id=None)
    assert checked_types(bare) is bare


def test_the_text_of_a_uuid_becomes_the_uuid_at_any_depth_of_optionality() -> None:
    account_id, other_id = uuid.uuid4(), uuid.uuid4()
    checked = checked_types(_command(account_id=str(account_id), other_id=str(other_id).upper()))
    assert checked.account_id == account_id
    assert type(checked.account_id) is uuid.UUID
    assert checked.other_id == other_id


def test_a_uuid_of_a_subclass_is_a_uuid_as_it_is() -> None:
    """asyncpg reads every uuid column as its own ``UUID`` subclass: an account listed
    from PostgreSQL and then used in a transfer was refused (``account_id must be a
    UUID``) until the check took any ``uuid.UUID``."""
    from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID

    account_id = AsyncpgUUID(str(uuid.uuid4()))
    assert type(account_id) is not uuid.UUID
    command = _command(account_id=account_id, other_id=AsyncpgUUID(str(uuid.uuid4())))
    assert checked_types(command) is command


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account_id", "not-a-uuid"),
        ("account_id", 1),
        ("account_id", uuid.uuid4().bytes),
        ("other_id", ""),
        ("amount", 100),
        ("amount", "1.00"),
        ("amount", 1.0),
        ("at", "2026-01-01T00:00:00+00:00"),
        ("at", date(2026, 1, 1)),
        ("name", 5),
        ("name", b"Ana"),
        ("flag", 1),
        ("flag", "true"),
        ("inner", {"count": 1, "when": "2026-01-01"}),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        checked_types(_command(**{field: value}))
    assert refused.value.details["field"] == field


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (_Inner(count="1", when=date(2026, 1, 1)), "inner.count"),  # type: ignore[arg-type]
        (_Inner(count=True, when=date(2026, 1, 1)), "inner.count"),
        (_Inner(count=1, when=datetime(2026, 1, 1, tzinfo=UTC)), "inner.when"),
        (_Inner(count=1, when="2026-01-01"), "inner.when"),  # type: ignore[arg-type]
    ],
)
def test_inside_a_nested_struct_the_path_is_named(value: _Inner, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        checked_types(_command(inner=value))
    assert refused.value.details["field"] == field


def test_the_checked_fields_are_found_from_the_declared_types() -> None:
    """What the walker reads: every field of a simple declared type, optional or not, and
    nothing else (a list, an enum: checked_enums')."""
    hints = typing.get_type_hints(_Command, include_extras=True)
    wrong_items: Any = [1, 2]  # a list of the wrong items: not this check's
    command = _command(tags=wrong_items)
    assert checked_types(command) is command
    assert set(hints) == set(_Command.__struct_fields__)
