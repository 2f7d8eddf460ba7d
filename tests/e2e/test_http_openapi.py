"""The OpenAPI document is the contract: what it says, and schemathesis checking the
running service against it with bounded examples, on the memory profile and with
the ledger, accounts, users and outbox on PostgreSQL.

Business rules a schema cannot express, and so left out of the comparison,
are listed in :data:`SCHEMA_CANNOT_SAY` with the reason.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from openapi_spec_validator import validate

from finbank_adapters.settings import Settings
from finbank_core.shared.errors import DomainError
from finbank_http.openapi import OPERATION_ID, PROBLEM_EXAMPLES
from finbank_http.problems import PROBLEM_MEDIA_TYPE
from tests.e2e.http_live import live_server, memory_settings, migrated_schema, postgres_settings

PROBLEM_REF = "#/components/schemas/Problem"
MAX_EXAMPLES = 12


@pytest.fixture
def document(client: TestClient[Litestar]) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def component(document: dict[str, Any], ref: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return found


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


# -- operation ids -------------------------------------------------------------------------------


def test_every_route_declares_a_short_lower_camel_case_operation_id(
    client: TestClient[Litestar],
) -> None:
    """The rule of docs/api.md: explicit (not Litestar's derived one), verb + noun, unique."""
    seen: dict[str, str] = {}
    for route in client.app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not isinstance(handler, HTTPRouteHandler) or not handler.resolve_include_in_schema():
                continue
            where = f"{sorted(handler.http_methods)} {route.path}"
            assert isinstance(handler.operation_id, str), f"{where} has no explicit operation_id"
            assert OPERATION_ID.match(handler.operation_id), (where, handler.operation_id)
            assert len(handler.operation_id) <= 40, (where, handler.operation_id)
            assert handler.operation_id not in seen, (where, seen.get(handler.operation_id))
            seen[handler.operation_id] = where
    assert {"logIn", "createTransfer", "sendPixPayment", "refundPixPayment"} <= set(seen)


# -- errors ----------------------------------------------------------------------------------------


def test_every_error_response_is_a_problem_and_every_operation_has_a_default(
    document: dict[str, Any],
) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        assert "default" in responses, (method, path)
        for status, response in responses.items():
            if status == "default" or status[0] in "45":
                content = response["content"]
                assert list(content) == [PROBLEM_MEDIA_TYPE], (method, path, status)
                assert content[PROBLEM_MEDIA_TYPE]["schema"] == {"$ref": PROBLEM_REF}
                example = content[PROBLEM_MEDIA_TYPE]["example"]
                assert (
                    example["code"]
                    in component(document, PROBLEM_REF)["properties"]["code"]["enum"]
                )
        if operation.get("security"):
            assert "401" in responses, (method, path)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "400" in responses, (method, path)
    assert not [name for name in document["components"]["schemas"] if "Validation" in name]


def test_problem_code_is_the_enum_of_every_stable_code(document: dict[str, Any]) -> None:
    problem = component(document, PROBLEM_REF)
    codes = set(problem["properties"]["code"]["enum"])
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        error = pending.pop()
        assert error.code in codes, error
        pending.extend(error.__subclasses__())
    assert {
        "invalid_input",
        "authentication_required",
        "request_too_large",
        "rate_limited",
    } <= codes
    for key in ("attempts_left", "retry_after_seconds", "field", "errors"):
        assert key in problem["properties"], key
    assert problem["examples"][0]["code"] == "insufficient_funds"


def test_the_example_problems_are_what_the_service_sends(client: TestClient[Litestar]) -> None:
    real = client.get("/v1/accounts").json()
    assert real == {**PROBLEM_EXAMPLES["401"], "instance": "/v1/accounts"}


# -- request and response schemas ------------------------------------------------------------------


def test_request_bodies_refuse_unknown_fields_in_the_schema_too(document: dict[str, Any]) -> None:
    checked = 0
    for path, method, operation in operations(document):
        body = operation.get("requestBody")
        if not body:
            continue
        schema = body["content"]["application/json"]["schema"]
        assert "$ref" in schema, (method, path)
        assert component(document, schema["$ref"])["additionalProperties"] is False, (method, path)
        checked += 1
    assert checked >= 20
    nested = component(document, "#/components/schemas/AccountDataIn")
    assert nested["additionalProperties"] is False


def test_constraints_are_inside_the_branches_of_nullable_fields(document: dict[str, Any]) -> None:
    text = str(document)
    for schema in walk(document):
        if "oneOf" in schema:
            assert not {"maxLength", "minLength", "pattern", "maximum", "minimum"} & set(schema)
    description = component(document, "#/components/schemas/TransferIn")["properties"][
        "description"
    ]
    assert {"type": "string", "maxLength": 140} in description["oneOf"]
    assert "ValidationException" not in text


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_amounts_statuses_codes_and_the_password_rule_are_in_the_schema(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    amount_in = schemas["TransferIn"]["properties"]["amount"]["pattern"]
    assert re.search(amount_in, "0.01")
    assert not re.search(amount_in, "0.01\n")
    amount_out = schemas["BalanceOut"]["properties"]["posted"]["pattern"]
    assert re.search(amount_out, "-19999999999.98")
    for name in ("PaymentOut", "RefundOut", "ChargeOut", "StatementLineOut"):
        for field, schema in schemas[name]["properties"].items():
            if field in {"amount", "refunded_amount", "balance_after"}:
                assert schema["pattern"] == amount_out, (name, field)
    enums = {
        ("PaymentOut", "status"),
        ("PaymentOut", "flow"),
        ("PaymentOut", "initiation"),
        ("ChargeOut", "status"),
        ("RefundOut", "status"),
        ("RefundOut", "nature"),
        ("AccountOut", "status"),
        ("MfaChallenge", "challenge_type"),
        ("StatementLineOut", "code"),
    }
    for name, field in enums:
        ref = schemas[name]["properties"][field]["$ref"]
        assert component(document, ref)["enum"], (name, field)
    assert component(document, schemas["StatementLineOut"]["properties"]["code"]["$ref"])[
        "enum"
    ] == [1, 2, 3, 10, 11, 12, 13, 20]
    assert schemas["SignUpIn"]["properties"]["password"]["minLength"] == 10


def test_login_answers_a_union_told_apart_by_outcome(document: dict[str, Any]) -> None:
    schema = document["paths"]["/v1/auth/login"]["post"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    assert schema["discriminator"] == {
        "propertyName": "outcome",
        "mapping": {
            "tokens": "#/components/schemas/LoggedIn",
            "mfa_challenge": "#/components/schemas/MfaChallenge",
        },
    }


def test_idempotency_keys_are_headers_only_and_replays_and_locations_are_declared(
    document: dict[str, Any],
) -> None:
    keyed = []
    for path, method, operation in operations(document):
        headers = [
            p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
        ]
        body = operation.get("requestBody")
        if body:
            schema = component(document, body["content"]["application/json"]["schema"]["$ref"])
            assert "idempotency_key" not in schema.get("properties", {}), (method, path)
        if "idempotency-key" in headers:
            keyed.append(operation["operationId"])
            created = operation["responses"]["201"]
            assert "Idempotent-Replayed" in created["headers"], (method, path)
    assert {"createTransfer", "sendPixPayment", "refundPixPayment"} <= set(keyed)
    incoming = document["paths"]["/v1/sandbox/pix/incoming"]["post"]["responses"]["202"]
    assert incoming["headers"]["Location"]["required"] is True


def test_qr_images_are_binary(document: dict[str, Any]) -> None:
    for suffix, media in (("qr.png", "image/png"), ("qr.svg", "image/svg+xml")):
        operation = document["paths"][f"/v1/pix/charges/{{txid}}/{suffix}"]["get"]
        schema = operation["responses"]["200"]["content"][media]["schema"]
        assert schema == {"type": "string", "format": "binary"}


# -- schemathesis against the running service ----------------------------------------------------

#: Business rules a schema cannot express: for each operation, the problem codes with
#: which the service may refuse a request that the schema allows (schemathesis's
#: "schema-valid request rejected"), and why no schema can say it.
SCHEMA_CANNOT_SAY: dict[str, dict[str, str]] = {
    "POST /v1/auth/signup": {
        "weak_password": "the password must differ from the username: a cross-field rule",
    },
    "POST /v1/pix/automatic/recurrences/{recurrence_id}/cancel": {
        "invalid_pix_recurrence": "a reason's Unicode-printable characters (see EVERYWHERE)",
    },
    "POST /v1/accounts": {
        "invalid_holder": "holder names need a letter and no control or invisible characters; "
        "the holder type must match the document (CPF: individual, CNPJ: company)",
        "invalid_document": "CPF and CNPJ check digits (mod 11), not a pattern",
    },
    "POST /v1/auth/step-up": {
        "invalid_input": "exactly one of password and code: a cross-field rule",
    },
    "POST /v1/auth/totp/verify": {
        "invalid_input": "a code is only checked while an enrolment is in progress: state",
    },
    "POST /v1/transfers": {
        "same_account": "the two accounts must differ: JSON Schema cannot compare two fields"
    },
    "GET /v1/pix/payments": {
        "invalid_input": "a cursor is an opaque sealed token this service issued",
    },
    "POST /v1/pix/payments": {
        "invalid_input": "the recipient is exactly one of key, br_code and account_data, "
        "and a BR Code fixes the amount or needs one: cross-field rules",
        "invalid_pix_key": "a key must be valid for its type (CPF/CNPJ check digits, "
        "+55 phone plan, e-mail syntax, EVP UUID)",
        "invalid_br_code": "a BR Code's CRC and its EMV structure",
        "invalid_document": "CPF and CNPJ check digits of account_data.document",
    },
    "POST /v1/pix/charges": {
        "invalid_pix_key": "the key's format for its type (as payments)",
        "invalid_document": "the payer's CPF or CNPJ check digits",
        "invalid_input": "a txid is unique per receiver; the expiry is checked on the clock",
    },
    "POST /v1/pix/keys": {
        "invalid_pix_key": "the key's format for its type; EVP keys come without a key",
    },
    "POST /v1/pix/brcodes/decode": {"invalid_br_code": "a BR Code's CRC and EMV structure"},
    "POST /v1/pix/automatic/recurrences": {
        "invalid_document": "the debtor's CPF or CNPJ check digits",
        "invalid_pix_recurrence": "dates against each other and the periodicity, the amount "
        "against its kind, printable texts: cross-field and Unicode rules",
    },
    "POST /v1/pix/automatic/recurrences/{recurrence_id}/request": {
        "invalid_pix_recurrence": "the payer's account must exist here: state",
    },
    "POST /v1/pix/automatic/authorisations/read": {
        "invalid_br_code": "a BR Code's CRC and EMV structure",
    },
    "POST /v1/pix/automatic/authorisations/reject": {
        "invalid_input": "exactly one of br_code and recurrence_id: a cross-field rule",
        "invalid_br_code": "a BR Code's CRC and EMV structure",
    },
    "POST /v1/pix/automatic/authorisations/pay": {
        "invalid_br_code": "a BR Code's CRC and EMV structure",
        "invalid_pix_recurrence": "a journey-3 code: what the code carries, not its shape",
    },
}
#: refusals any operation may give a schema-valid request: (code, part of the detail)
EVERYWHERE: dict[tuple[str, str], str] = {
    ("invalid_input", "NUL characters are not allowed"): "no text may hold U+0000 (databases "
    "refuse it); the document says so in prose (docs/api.md), not in every string's schema",
    ("invalid_input", "'since' must be before 'until'"): "a period's two ends compared: "
    "a cross-field rule (statements, payment lists)",
    ("invalid_input", "printable characters"): "usernames and codes must be Unicode-printable "
    "(str.isprintable: no category C or Z but the space), which an ECMA-262 pattern without "
    "the u flag cannot state",
}


def business_rule(label: str, failure: BaseException, response: Any) -> bool:
    """Whether ``failure`` is only schemathesis's "schema-valid request rejected" for a
    refusal listed above."""
    if failure_kinds(failure) != {"RejectedPositiveData"}:
        return False
    try:
        problem = response.json()
    except ValueError:
        return False
    code, detail = problem.get("code"), str(problem.get("detail", ""))
    if code in SCHEMA_CANNOT_SAY.get(label, {}):
        return True
    return any(code == c and part in detail for c, part in EVERYWHERE)


def failure_kinds(failure: BaseException) -> set[str]:
    if isinstance(failure, BaseExceptionGroup):
        return set().union(*(failure_kinds(inner) for inner in failure.exceptions))
    return {type(failure).__name__}


@pytest.fixture(params=["memory", "postgres"])
def served_settings(request: pytest.FixtureRequest) -> Iterator[Settings]:
    if request.param == "memory":
        yield memory_settings()
        return
    with migrated_schema() as schema:
        yield postgres_settings(schema)


@pytest.mark.slow
def test_schemathesis_finds_no_difference_between_the_document_and_the_service(
    served_settings: Settings,
) -> None:
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.result import Ok
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        positive_data_acceptance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        positive_data_acceptance,
    ]
    with live_server(served_settings) as base_url, httpx.Client(base_url=base_url) as http:
        headers = logged_in_headers(http)
        document = http.get("/schema/openapi.json").json()
        schema = schemathesis.openapi.from_dict(document)
        failures: dict[str, str] = {}
        calls: list[str] = []

        def exercise(label: str, strategy: Any) -> None:
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
            )
            @given(case=strategy, authenticated=st.booleans())
            def run(case: Any, authenticated: bool) -> None:
                sent = {**headers} if authenticated else {}
                if case.operation.path == "/v1/auth/logout":
                    sent = {}  # never revoke the token the run uses
                response = case.call(base_url=base_url, headers=sent)
                calls.append(label)
                try:
                    case.validate_response(response, checks=checks, headers=sent)
                except (Exception, BaseExceptionGroup) as failure:  # all reported below
                    if not business_rule(label, failure, response):
                        text = f"{describe(failure)[:2000]}\n{response.text[:500]}"
                        failures.setdefault(label, text)

            run()

        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # every operation can be generated
            operation = result.ok()
            exercise(operation.label, operation.as_strategy())
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert len(calls) >= 3 * len(document["paths"])


def describe(failure: BaseException) -> str:
    """A failure's text, with the sub-failures of a group."""
    if isinstance(failure, BaseExceptionGroup):
        return "\n".join(describe(inner) for inner in failure.exceptions)
    return f"{type(failure).__name__}: {failure}"


def logged_in_headers(http: httpx.Client) -> dict[str, str]:
    """A user with an account holding money, so generated requests reach real rules."""
    username, password = f"st-{secrets.token_hex(4)}", f"pw-{secrets.token_hex(8)}"
    assert (
        http.post("/v1/auth/signup", json={"username": username, "password": password}).status_code
        == 201
    )
    login = http.post("/v1/auth/login", json={"username": username, "password": password})
    headers = {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}
    account = http.post("/v1/accounts", json={"holder_name": "Schema Thesis"}, headers=headers)
    assert account.status_code == 201, account.text
    deposit = http.post(
        "/v1/sandbox/deposits",
        json={"account_id": account.json()["id"], "amount": "1000.00"},
        headers=headers,
    )
    assert deposit.status_code == 201, deposit.text
    return headers


def test_every_protected_operation_answers_401_before_reading_its_input(
    client: TestClient[Litestar], document: dict[str, Any]
) -> None:
    """Whoever adds a route: without a token, a deep, malformed or mistyped body is still 401."""
    checked = 0
    for path, method, operation in operations(document):
        if not operation.get("security"):
            continue
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path) + "?unknown=1&unknown=2"
        for body, media in (("[" * 2000, "application/json"), ("a=1", "text/plain")):
            response = client.request(
                method.upper(), url, content=body, headers={"Content-Type": media}
            )
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
        checked += 1
    assert checked >= 30
