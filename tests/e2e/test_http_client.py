"""A typed client generated from the OpenAPI document, as an outside team would, drives a
whole journey against the running service: sign-up, TOTP enrolment (with step-up),
MFA login, a transfer, a PIX payment and its refund.

The generator runs with ``--fail-on-warning``: an operation or schema it cannot
read fails the test. Its only configuration maps the QR images' media types
to binary (``content_type_overrides``), which openapi-python-client needs for
any ``image/*`` response.
"""

from __future__ import annotations

import importlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.e2e.http_live import live_server

PACKAGE = "finbank_client"
CONFIG = """\
package_name_override: finbank_client
project_name_override: finbank-client
post_hooks: []
content_type_overrides:
  image/png: application/octet-stream
  image/svg+xml: application/octet-stream
"""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with live_server() as base_url:
        yield base_url


@pytest.fixture(scope="module")
def generated(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generate the client from the served document; yield where it is, importable."""
    import httpx

    where = tmp_path_factory.mktemp("client")
    document = where / "openapi.json"
    document.write_text(json.dumps(httpx.get(f"{server}/schema/openapi.json").json()))
    (where / "config.yaml").write_text(CONFIG)
    generator = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(
        [
            str(generator), "generate", "--path", str(document), "--meta", "none",
            "--output-path", str(where / PACKAGE), "--config", str(where / "config.yaml"),
            "--fail-on-warning",
        ],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(where))
    try:
        yield where / PACKAGE
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_every_operation_of_the_document_has_a_generated_function(generated: Path) -> None:
    document = json.loads((generated.parent / "openapi.json").read_text())
    generated_ops = {p.stem for p in (generated / "api").rglob("*.py") if p.stem != "__init__"}
    for item in document["paths"].values():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                snake = "".join(
                    f"_{c.lower()}" if c.isupper() else c for c in operation["operationId"]
                )
                assert snake in generated_ops, operation["operationId"]


def test_a_generated_client_drives_signup_mfa_login_transfer_pix_and_refund(
    server: str, generated: Path
) -> None:
    client_module = module("client")
    models = module("models")
    api = "api"
    client = client_module.Client(base_url=server, raise_on_unexpected_status=True)
    username, password = f"gen-{secrets.token_hex(4)}", "a long enough passphrase"

    # sign up, log in (no MFA yet)
    signed = module(f"{api}.auth.sign_up").sync(
        client=client, body=models.SignUpIn(username=username, password=password)
    )
    assert isinstance(signed, models.SignUpOut), signed
    logged = module(f"{api}.auth.log_in").sync(
        client=client, body=models.LoginIn(username=username, password=password)
    )
    assert isinstance(logged, models.LoggedIn), logged
    me = client_module.AuthenticatedClient(
        base_url=server, token=logged.tokens.access_token, raise_on_unexpected_status=True
    )

    # enrol TOTP: step up with the password, then set up and verify
    step_up = module(f"{api}.auth.create_step_up_token").sync(
        client=me,
        body=models.StepUpIn(purpose=models.StepUpPurpose.MFA_CHANGE, password=password),
    )
    assert isinstance(step_up, models.StepUpOut), step_up
    setup = module(f"{api}.auth.start_totp_setup").sync(
        client=me, x_step_up_token=step_up.step_up_token
    )
    assert isinstance(setup, models.TotpSetupOut), setup
    totp = pyotp.TOTP(setup.secret)
    # The enrolment uses the previous step's code and the login the current one: both
    # must still lie in the server's window (one step either side) when they arrive, so
    # start in a step with 10 s left, not at its last instant (then the previous step's
    # code arrived two steps back and the enrolment was refused).
    now = time.time()
    if totp.interval - now % totp.interval < 10:
        time.sleep(totp.interval - now % totp.interval + 0.05)
        now = time.time()
    verified = module(f"{api}.auth.verify_totp").sync_detailed(
        client=me, body=models.TotpVerifyIn(code=totp.at(now - 30))
    )
    assert verified.status_code == 204

    # log in with MFA: a challenge; a wrong code tells the attempts left; the right one: tokens
    challenge = module(f"{api}.auth.log_in").sync(
        client=client, body=models.LoginIn(username=username, password=password)
    )
    assert isinstance(challenge, models.MfaChallenge), challenge
    assert challenge.challenge_type == models.ChallengeType.SOFTWARE_TOKEN_MFA
    answer = module(f"{api}.auth.answer_mfa_challenge")
    wrong_code = f"{(int(totp.at(now)) + 1) % 1_000_000:06d}"
    wrong = answer.sync(
        client=client,
        body=models.MfaAnswerIn(challenge_id=challenge.challenge_id, code=wrong_code),
    )
    assert isinstance(wrong, models.Problem), wrong
    assert wrong.code == models.ProblemCode.INCORRECT_CODE
    assert wrong.attempts_left == 4
    tokens = answer.sync(
        client=client,
        body=models.MfaAnswerIn(challenge_id=challenge.challenge_id, code=totp.at(now)),
    )
    assert isinstance(tokens, models.LoggedIn), tokens
    me = client_module.AuthenticatedClient(
        base_url=server, token=tokens.tokens.access_token, raise_on_unexpected_status=True
    )

    # two accounts, a deposit, a transfer (replayed once: the same answer, marked)
    open_account = module(f"{api}.accounts.open_account")
    main = open_account.sync(client=me, body=models.OpenAccountIn(holder_name="Maria Silva"))
    savings = open_account.sync(client=me, body=models.OpenAccountIn(holder_name="Maria Silva"))
    assert isinstance(main, models.AccountOut), main
    assert main.status == models.AccountStatus.ACTIVE
    deposit = module(f"{api}.sandbox.create_sandbox_deposit").sync(
        client=me, body=models.SandboxDepositIn(account_id=main.id, amount="500.00")
    )
    assert isinstance(deposit, models.TransferOut), deposit
    transfer_body = models.TransferIn(
        from_account_id=main.id, to_account_id=savings.id, amount="120.00"
    )
    create_transfer = module(f"{api}.transfers.create_transfer")
    first = create_transfer.sync_detailed(client=me, body=transfer_body, idempotency_key="t-1")
    again = create_transfer.sync_detailed(client=me, body=transfer_body, idempotency_key="t-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert first.parsed.transfer_id == again.parsed.transfer_id

    # PIX: a key on the savings account, a payment to it, its refund
    key = module(f"{api}.pix.register_pix_key").sync(
        client=me,
        body=models.RegisterKeyIn(account_id=savings.id, key_type=models.PixKeyType.EVP),
    )
    assert isinstance(key, models.KeyOut), key
    payment = module(f"{api}.pix.send_pix_payment").sync(
        client=me,
        body=models.PaymentIn(account_id=main.id, amount="30.00", key=key.key),
        idempotency_key="p-1",
    )
    assert isinstance(payment, models.PaymentOut), payment
    assert payment.status == models.PaymentStatus.SETTLED
    refund = module(f"{api}.pix.refund_pix_payment").sync(
        client=me,
        e2e_id=payment.end_to_end_id,
        body=models.RefundIn(amount="10.00"),
        idempotency_key="r-1",
    )
    assert isinstance(refund, models.RefundOut), refund
    assert refund.status == models.RefundStatus.DEVOLVIDO
    assert refund.amount == "10.00"

    # balances as the client reads them: 500 - 120 - 30 + 10 on the main account
    detail = module(f"{api}.accounts.get_account").sync(client=me, account_id=main.id)
    assert isinstance(detail, models.AccountDetailOut), detail
    assert detail.balance.posted == "360.00"
    statement = module(f"{api}.accounts.get_statement").sync(client=me, account_id=main.id)
    assert [line.code for line in statement.lines] == [
        models.TransferCode.DEPOSIT,
        models.TransferCode.INTERNAL_TRANSFER,
        models.TransferCode.PIX_OUT,
        models.TransferCode.PIX_REFUND_IN,
    ]
