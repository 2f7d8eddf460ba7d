"""The facade is type-checked: mypy sees what every ``bank.<context>.<method>`` returns.

The facades reach use cases through typed providers (``container.pix().send_pix``
is a ``Factory[SendPix]`` to mypy) and :func:`finbank.provided`, so a facade
method that claims another result than its use case gives, or a provider that
builds another class, is a type error. These tests run mypy itself: on a
snippet that pins the type of every facade method's result (it must pass),
and on a facade method that claims the wrong result (it must fail: the
check is real, not ``Any`` passing everything).
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
import typing
from pathlib import Path

import pytest
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[2]


def _facades() -> list[type]:
    """Every ``...Facade`` class of the ``finbank`` package, new ones included."""
    found: dict[str, type] = {}
    for path in sorted((ROOT / "src" / "finbank").glob("*.py")):
        module = importlib.import_module(
            f"finbank.{path.stem}" if path.stem != "__init__" else "finbank"
        )
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and name.endswith("Facade")
                and obj.__module__.startswith("finbank")
            ):
                found[f"{obj.__module__}.{name}"] = obj
    return list(found.values())


PINNED = """
from typing import assert_type

from finbank import Bank
from finbank_core.accounts import use_cases as a
from finbank_core.accounts.model import CustomerAccount
from finbank_core.pix import use_cases as p
from finbank_core.pix.directory import KeyRegistration
from finbank_core.pix.payments import PixPayment


async def pinned(bank: Bank, q: a.GetBalanceQuery, s: p.SendPixCommand) -> None:
    assert_type(await bank.accounts.open(a.OpenAccountCommand(owner_id="o", holder_name="h")),
                CustomerAccount)
    assert_type(await bank.accounts.balance(q), a.BalanceResult)
    assert_type(await bank.accounts.list(a.ListAccountsQuery(owner_id="o")), list[CustomerAccount])
    assert_type(await bank.pix.send(s), p.SendPixResult)
    assert_type(await bank.pix.get_payment(p.GetPixPaymentQuery(owner_id="o", end_to_end_id="e")),
                PixPayment)
    assert_type(await bank.pix.list_keys(p.ListPixKeysQuery(owner_id="o")), list[KeyRegistration])
    assert_type(await bank.pix.get_charge(p.GetChargeQuery(owner_id="o", txid="t")), p.ChargeResult)
"""

WRONG = """
from finbank import provided
from finbank_adapters.containers import BankContainer
from finbank_core.accounts.use_cases import OpenAccountCommand
from finbank_core.pix.payments import PixPayment


class WrongFacade:
    def __init__(self, container: BankContainer) -> None:
        self._c = container.accounts()

    async def open(self, command: OpenAccountCommand) -> PixPayment:
        return await (await provided(self._c.open_account))(command)
"""


def _mypy(tmp_path: Path, name: str, source: str) -> tuple[str, int]:
    module = tmp_path / f"{name}.py"
    module.write_text(textwrap.dedent(source))
    out, err, status = mypy_api.run(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            str(module),
        ]
    )
    return out + err, status


def test_mypy_pins_the_result_of_every_facade_method(tmp_path: Path) -> None:
    output, status = _mypy(tmp_path, "pinned", PINNED)
    assert status == 0, output


def test_mypy_refuses_a_facade_method_that_claims_the_wrong_result(tmp_path: Path) -> None:
    output, status = _mypy(tmp_path, "wrong", WRONG)
    assert status == 1
    assert 'Incompatible return value type (got "CustomerAccount", expected "PixPayment")' in (
        output
    )


def test_every_facade_is_found() -> None:
    names = {facade.__name__ for facade in _facades()}
    assert {"AccountsFacade", "PixFacade", "AuthFacade", "ReconciliationFacade"} <= names


@pytest.mark.parametrize("facade", _facades(), ids=lambda facade: facade.__name__)
def test_no_facade_method_takes_or_returns_any(facade: type) -> None:
    methods = [
        member
        for name, member in inspect.getmembers(facade, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert methods
    for method in methods:
        hints = typing.get_type_hints(method)
        assert "return" in hints, method.__qualname__
        for name, hint in hints.items():
            assert typing.Any not in (hint, *typing.get_args(hint)), f"{method.__qualname__}.{name}"
