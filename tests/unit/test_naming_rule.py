"""One naming rule in every context (docs/architecture.md, "A new use case").

A use case takes one struct: ``XxxCommand`` when it changes something,
``XxxQuery`` when it only reads, keyword fields only; it returns a domain
struct or an ``XxxResult``. These tests read the exported API of every
context, so a new use case that takes positional ids, or an input or result
named otherwise, fails here.
"""

from __future__ import annotations

import importlib
import inspect
import typing

import msgspec
import pytest

CONTEXTS = ("accounts", "auth", "pix", "reconciliation")

#: use cases driven by what the network or a worker hands them, not by a caller
MESSAGE_DRIVEN = {"ReceivePix": "IncomingPixOrder", "AcceptIncomingPix": "IncomingPixOrder"}
#: takes nothing: makes sure the bank's own ledger accounts exist
NO_INPUT = {"EnsureBankAccounts"}


def _use_cases(context: str) -> list[tuple[str, type]]:
    package = importlib.import_module(f"finbank_core.{context}")
    found = []
    for name in package.__all__:
        obj = getattr(package, name)
        if (
            inspect.isclass(obj)
            and ".use_cases" in obj.__module__
            and inspect.iscoroutinefunction(obj.__call__)
            and not issubclass(obj, msgspec.Struct)
        ):
            found.append((name, obj))
    return found


def _exports(context: str) -> dict[str, object]:
    package = importlib.import_module(f"finbank_core.{context}")
    return {name: getattr(package, name) for name in package.__all__}


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_use_case_takes_one_command_or_query(context: str) -> None:
    checked = 0
    wrong = []
    for name, use_case in _use_cases(context):
        if name in NO_INPUT:
            continue
        params = list(inspect.signature(use_case.__call__).parameters.values())[1:]
        hints = typing.get_type_hints(use_case.__call__)
        names = [getattr(hints.get(p.name), "__name__", "?") for p in params]
        expected = MESSAGE_DRIVEN.get(name)
        ok = len(params) == 1 and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        if expected is not None:
            ok = ok and names == [expected]
        else:
            ok = ok and names[0].endswith(("Command", "Query"))
        if not ok:
            wrong.append(f"{name}({', '.join(names)})")
        checked += 1
    assert checked > 0
    assert wrong == [], f"use cases outside the naming rule: {wrong}"


@pytest.mark.parametrize("context", CONTEXTS)
def test_commands_and_queries_are_frozen_keyword_structs(context: str) -> None:
    inputs = {
        name: obj
        for name, obj in _exports(context).items()
        if inspect.isclass(obj) and name.endswith(("Command", "Query"))
    }
    for name, struct in inputs.items():
        assert issubclass(struct, msgspec.Struct), name
        assert struct.__struct_config__.frozen, f"{name} must be frozen"
        fields = msgspec.structs.fields(struct)
        assert all(f.name in struct.__struct_fields__ for f in fields)
        with pytest.raises(TypeError):  # keyword fields only: no positional construction
            struct(*(None for _ in fields))


@pytest.mark.parametrize("context", CONTEXTS)
def test_no_input_or_result_goes_by_another_name(context: str) -> None:
    odd = sorted(
        name
        for name in _exports(context)
        if name.endswith(("View", "Request", "Acceptance", "Params", "Input", "Output"))
    )
    assert odd == []


def test_one_balance_name_per_meaning() -> None:
    from finbank_core import accounts
    from finbank_core.accounts import ledger, use_cases

    assert accounts.AccountBalance is ledger.AccountBalance  # a point of an account's history
    assert not hasattr(use_cases, "AccountBalance")
    assert accounts.BalanceResult is use_cases.BalanceResult  # what GetBalance answers


def test_a_command_with_a_password_keeps_it_out_of_its_repr() -> None:
    from finbank_core.auth import SignUpCommand

    command = SignUpCommand(username="ana", password="correct horse battery", email="a@x.example")
    assert "correct horse" not in repr(command)
    assert "a@x.example" not in repr(command)
    assert "ana" not in repr(command)  # a username is personal data (test_pii_repr.py)


def test_the_login_steps_take_commands_that_keep_their_secrets_out_of_repr() -> None:
    """Every credential a login step checks is a field of its command, masked in ``repr``."""
    from finbank_core import auth

    secret = "s3cret-Value-9"
    commands = [
        auth.LoginCommand(username="ana", password=secret),
        auth.ConfirmSignUpCommand(username="ana", code=secret),
        auth.AnswerChallengeCommand(challenge_id=secret, answer=secret),
        auth.SetUpChallengeTotpCommand(challenge_id=secret),
        auth.SelectMfaTypeCommand(challenge_id=secret, mfa_type="SMS_MFA"),
        auth.AuthenticateQuery(access_token=secret),
        auth.RefreshCommand(refresh_token=secret, username="ana"),
        auth.LogoutCommand(access_token=secret),
        auth.SetUpTotpCommand(access_token=secret, step_up_token=secret),
        auth.VerifyTotpCommand(access_token=secret, code=secret),
    ]
    for command in commands:
        shown = repr(command)
        assert secret not in shown, shown
        assert shown.startswith(type(command).__name__ + "(")
    assert "ana" not in repr(commands[0])  # a username is personal data (test_pii_repr.py)
    assert "SMS_MFA" in repr(commands[4])
