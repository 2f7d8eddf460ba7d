"""The HTTP service under hostile input, on the memory profile and on PostgreSQL.

Each check is what a black-box probe of the service found (issue 17): deep
JSON, bodies validated before authentication, content types, query strings,
amounts with a trailing newline, balances above the input range, NUL
characters, driver text in errors, tracebacks in the log, security headers,
``Retry-After`` and problem details. The ``api`` fixture runs every test of
the first part on both profiles: the memory one, and the ledger, accounts,
users and outbox on a PostgreSQL schema of the test's own (what the local
profile uses), so the two must answer alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from finbank_adapters.containers import BankContainer, build_container
from finbank_adapters.postgres.migrations import migrate, quote_ident
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.settings import (
    AuthOptions,
    Backends,
    DatabaseBackend,
    HttpOptions,
    JwtOptions,
    PostgresOptions,
    Settings,
)
from finbank_core.auth.errors import IncorrectCode
from finbank_core.shared.errors import ServiceUnavailable
from finbank_http import create_app
from finbank_http.app import uvicorn_options
from finbank_http.limits import json_depth_exceeds
from finbank_http.observability import Masker
from finbank_http.problems import EXCEPTION_HANDLERS
from finbank_http.protocol import ProblemHttpProtocol
from tests.e2e.conftest import User, deposit, open_account, sign_up_and_log_in
from tests.postgres_support import POSTGRES_DSN, require_postgres

PROBLEM = "application/problem+json"
DEEP = "[" * 1000 + "]" * 1000
MAX_INPUT = "9999999999.99"


def jwt_settings(**areas: Any) -> Settings:
    return Settings(jwt=JwtOptions(secret=secrets.token_hex(32)), **areas)


@pytest.fixture(scope="module")
def postgres_schema() -> Iterator[str]:
    """A migrated schema of this module's own, dropped at the end."""
    require_postgres()
    schema = f"t_{secrets.token_hex(6)}"

    async def run(create: bool) -> None:
        connection = await asyncpg.connect(POSTGRES_DSN)
        try:
            if create:
                await migrate(connection, schema)
            else:
                await connection.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await connection.close()

    asyncio.run(run(create=True))
    try:
        yield schema
    finally:
        asyncio.run(run(create=False))


def profile_container(profile: str, request: pytest.FixtureRequest) -> BankContainer:
    if profile == "memory":
        return build_container(jwt_settings())
    schema = request.getfixturevalue("postgres_schema")
    postgres = DatabaseBackend.POSTGRES
    return build_container(
        jwt_settings(
            backends=Backends(ledger=postgres, accounts=postgres, users=postgres, events=postgres),
            postgres=PostgresOptions(dsn=f"{POSTGRES_DSN}?{urlencode({'search_path': schema})}"),
        )
    )


@pytest.fixture(params=["memory", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(profile_container(request.param, request))) as client:
        yield client


@pytest.fixture
def user(api: TestClient[Litestar]) -> User:
    return sign_up_and_log_in(api, f"u{secrets.token_hex(6)}")


def assert_problem(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code, body
    assert body["type"] == f"urn:finbank:problem:{code}"
    if field is not None:
        assert body.get("field") == field, body


def post_raw(
    api: TestClient[Litestar], path: str, body: str, headers: dict[str, str] | None = None
) -> Any:
    return api.post(
        path, content=body, headers={"Content-Type": "application/json", **(headers or {})}
    )


# -- deep JSON, authentication first, content types, size -----------------------------------


@pytest.mark.parametrize("path", ["/v1/auth/login", "/v1/auth/signup"])
def test_deeply_nested_json_on_public_routes_is_a_400_not_a_500(
    api: TestClient[Litestar], path: str
) -> None:
    assert_problem(post_raw(api, path, DEEP), 400, "invalid_input", field="body")
    body = '{"username": ' + DEEP + ', "password": "x"}'
    assert_problem(post_raw(api, path, body), 400, "invalid_input", field="body")


@pytest.mark.parametrize("path", ["/v1/accounts", "/v1/transfers", "/v1/pix/payments"])
def test_protected_routes_answer_401_before_looking_at_the_body(
    api: TestClient[Litestar], user: User, path: str
) -> None:
    for body in (DEEP, '{"unknown": 1}', "not json"):
        assert_problem(post_raw(api, path, body), 401, "invalid_token")
        response = api.post(path, content=body, headers={"Content-Type": "text/plain"})
        assert_problem(response, 401, "invalid_token")
    # with a token, the same deep body is refused as input
    assert_problem(post_raw(api, path, DEEP, user.headers), 400, "invalid_input", field="body")


def test_a_json_body_sent_as_text_plain_is_refused_with_415_and_moves_no_money(
    api: TestClient[Litestar], user: User
) -> None:
    source = open_account(api, user)
    target = open_account(api, user, "Other")
    deposit(api, user, source["id"], "10.00")
    body = json.dumps(
        {"from_account_id": source["id"], "to_account_id": target["id"], "amount": "1.00"}
    )
    headers = {**user.headers, "Content-Type": "text/plain", "Idempotency-Key": "k-415"}
    response = api.post("/v1/transfers", content=body, headers=headers)
    assert_problem(response, 415, "unsupported_media_type")
    detail = api.get(f"/v1/accounts/{source['id']}", headers=user.headers).json()
    assert detail["balance"]["posted"] == "10.00"
    # the same body as JSON goes through
    headers["Content-Type"] = "application/json; charset=utf-8"
    assert api.post("/v1/transfers", content=body, headers=headers).status_code == 201


def test_a_body_over_the_size_limit_is_refused_with_413() -> None:
    settings = jwt_settings(http=HttpOptions(max_body_bytes=512))
    with TestClient(create_app(build_container(settings))) as api:
        small = '{"username": "a", "password": "b"}'
        assert api.post("/v1/auth/login", content=small, headers=json_type()).status_code == 401
        big = '{"username": "a", "password": "' + "x" * 600 + '"}'
        response = api.post("/v1/auth/login", content=big, headers=json_type())
        assert_problem(response, 413, "request_too_large")


def json_type() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def test_the_depth_limit_is_a_setting_and_strings_do_not_count() -> None:
    assert not json_depth_exceeds(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 2)
    assert not json_depth_exceeds(b'{"a": [1, {"b": 2}]}', 3)
    assert json_depth_exceeds(b'{"a": [1, {"b": [2]}]}', 3)
    assert not json_depth_exceeds(b'{"a": "\\"[[[["}', 1)
    settings = jwt_settings(http=HttpOptions(max_json_depth=3))
    with TestClient(create_app(build_container(settings))) as api:
        body = '{"username": [[["x"]]], "password": "y"}'
        response = api.post("/v1/auth/login", content=body, headers=json_type())
        assert_problem(response, 400, "invalid_input", field="body")


# -- query strings and OPTIONS -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("until=0.5", "until"),
        ("since=1", "since"),
        ("limit=10&limit=20", "limit"),
        ("cursor=1&cursor=1", "cursor"),
        ("page=2", "page"),
        ("limit=10&LIMIT=3", "LIMIT"),
    ],
)
def test_statement_queries_are_parsed_strictly(
    api: TestClient[Litestar], user: User, query: str, field: str
) -> None:
    account = open_account(api, user)
    response = api.get(f"/v1/accounts/{account['id']}/statement?{query}", headers=user.headers)
    assert_problem(response, 400, "invalid_input", field=field)


def test_a_well_formed_statement_query_still_works(api: TestClient[Litestar], user: User) -> None:
    account = open_account(api, user)
    deposit(api, user, account["id"], "5.00")
    query = urlencode({"since": "2000-01-01T00:00:00+00:00", "limit": 10, "cursor": 0})
    response = api.get(f"/v1/accounts/{account['id']}/statement?{query}", headers=user.headers)
    assert response.status_code == 200, response.text
    assert [line["amount"] for line in response.json()["lines"]] == ["5.00"]


@pytest.mark.parametrize("cursor", [str(2**63), str(2**64 + 5), "99999999999999999999999"])
def test_a_cursor_out_of_range_is_refused_without_driver_text(
    api: TestClient[Litestar], user: User, cursor: str
) -> None:
    account = open_account(api, user)
    response = api.get(
        f"/v1/accounts/{account['id']}/statement?cursor={cursor}", headers=user.headers
    )
    assert_problem(response, 400, "invalid_input", field="cursor")
    assert "int64" not in response.text.lower()
    assert "asyncpg" not in response.text.lower()
    edge = api.get(
        f"/v1/accounts/{account['id']}/statement?cursor={2**63 - 1}", headers=user.headers
    )
    assert edge.status_code == 200, edge.text
    assert edge.json()["lines"] == []


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v1/accounts", {"GET", "POST", "OPTIONS"}),
        ("/v1/pix/keys", {"GET", "POST", "OPTIONS"}),
        ("/v1/transfers", {"POST", "OPTIONS"}),
        ("/v1/pix/payments/E1/refunds", {"POST", "OPTIONS"}),
    ],
)
def test_options_answers_the_methods_the_path_takes(
    api: TestClient[Litestar], path: str, methods: set[str]
) -> None:
    response = api.options(path)
    assert response.status_code == 204
    assert {m.strip() for m in response.headers["allow"].split(",")} == methods


# -- amounts ------------------------------------------------------------------------------------


def test_amounts_with_a_trailing_newline_are_refused_on_all_six_money_routes(
    api: TestClient[Litestar], user: User
) -> None:
    account = open_account(api, user)
    other = open_account(api, user, "Other")
    deposit(api, user, account["id"], "100.00")
    key = api.post(
        "/v1/pix/keys", json={"account_id": other["id"], "key_type": "EVP"}, headers=user.headers
    )
    assert key.status_code == 201, key.text
    payment = api.post(
        "/v1/pix/payments",
        json={"account_id": account["id"], "amount": "1.00", "key": key.json()["key"]},
        headers={**user.headers, "Idempotency-Key": "pay-1"},
    )
    assert payment.status_code == 201, payment.text
    e2e = payment.json()["end_to_end_id"]
    idem = {**user.headers, "Idempotency-Key": secrets.token_hex(8)}
    calls = [
        ("/v1/transfers", {"from_account_id": account["id"], "to_account_id": other["id"]}),
        ("/v1/sandbox/deposits", {"account_id": account["id"]}),
        ("/v1/pix/payments", {"account_id": account["id"], "key": key.json()["key"]}),
        (f"/v1/pix/payments/{e2e}/refunds", {}),
        ("/v1/pix/charges", {"account_id": other["id"], "key": key.json()["key"]}),
        ("/v1/sandbox/pix/incoming", {"account_id": account["id"]}),
    ]
    for amount in ("0.01\n", "1.00\r\n", "\n1.00", "١.٠٠", "1.00 "):
        for path, body in calls:
            response = api.post(path, json={**body, "amount": amount}, headers=idem)
            assert_problem(response, 400, "invalid_input", field="amount")
    detail = api.get(f"/v1/accounts/{account['id']}", headers=user.headers).json()
    assert detail["balance"]["posted"] == "99.00"  # only the one good payment moved money


def test_a_device_id_header_is_1_to_128_characters_and_the_recipients_text_is_checked(
    api: TestClient[Litestar], user: User
) -> None:
    """An empty ``X-Device-Id`` used to be a device named "" (tracked and capped as new);
    the core refuses it too (``check_device_id``), so HTTP and library callers agree. A
    manual recipient's text that no backend stores is a 400, and moves no money."""
    account = open_account(api, user)
    deposit(api, user, account["id"], "10.00")
    body = {"account_id": account["id"], "amount": "1.00", "key": PEER_KEY_EMAIL}
    for device in ("", "d" * 129):
        response = api.post(
            "/v1/pix/payments",
            json=body,
            headers={
                **user.headers,
                "Idempotency-Key": secrets.token_hex(8),
                "X-Device-Id": device,
            },
        )
        assert_problem(response, 400, "invalid_input", field="device_id")
    manual = {
        "ispb": "88888888",
        "branch": "0001",
        "account_number": "123456-7",
        "document": "52998224725",
    }
    for field, value in (("name", "Ana\ud800"), ("account_number", "12\udfff")):
        raw = json.dumps(
            {
                "account_id": account["id"],
                "amount": "1.00",
                "account_data": {**manual, field: value},
            }
        )  # json.dumps escapes it: "\\ud800", as a client would send it
        response = post_raw(
            api,
            "/v1/pix/payments",
            raw,
            {**user.headers, "Idempotency-Key": secrets.token_hex(8)},
        )
        # refused by the JSON decoder already (msgspec: no lone surrogates), as a whole body
        assert_problem(response, 400, "invalid_input")
    ok = api.post(
        "/v1/pix/payments",
        json=body,
        headers={**user.headers, "Idempotency-Key": "dev-ok", "X-Device-Id": "d" * 128},
    )
    assert ok.status_code == 201, ok.text
    detail = api.get(f"/v1/accounts/{account['id']}", headers=user.headers).json()
    assert detail["balance"]["available"] == "9.00"  # only the good payment moved money


def test_a_key_given_twice_is_refused_and_moves_no_money(
    api: TestClient[Litestar], user: User
) -> None:
    """Parsers disagree on which of two equal keys counts; we refuse the body."""
    source = open_account(api, user)
    target = open_account(api, user, "Other")
    deposit(api, user, source["id"], "10.00")
    head = f'"from_account_id": "{source["id"]}", "to_account_id": "{target["id"]}"'
    headers = {**user.headers, "Idempotency-Key": secrets.token_hex(8)}
    bodies = {
        "amount": f'{{{head}, "amount": "1.00", "amount": "9.00"}}',
        # spelt with an escape: the same key once decoded
        "amount ": f'{{{head}, "amount": "1.00", "\\u0061mount": "9.00"}}',
        "to_account_id": f'{{{head}, "amount": "1.00", "to_account_id": "{source["id"]}"}}',
        "description": f'{{{head}, "amount": "1.00", "description": "a", "description": "b"}}',
    }
    for name, body in bodies.items():
        response = post_raw(api, "/v1/transfers", body, headers)
        assert_problem(response, 400, "invalid_input", field=name.strip())
        assert name.strip() in response.json()["detail"]
    # nested: a struct inside the body
    limits = (
        f'{{"account_id": "{source["id"]}", "limits": '
        '{"day_per_transaction": "1.00", "day_per_transaction": "900.00"}}'
    )
    response = api.put(
        "/v1/pix/limits",
        content=limits,
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "invalid_input", field="day_per_transaction")
    detail = api.get(f"/v1/accounts/{source['id']}", headers=user.headers).json()
    assert detail["balance"]["posted"] == "10.00"
    # a key's name as a value, or in an escape, is not a key given twice: it goes through
    body = f'{{{head}, "amount": "1.00", "description": "amount \\"amount\\""}}'
    response = post_raw(api, "/v1/transfers", body, headers)
    assert response.status_code == 201, response.text
    assert response.json()["description"] == 'amount "amount"'
    detail = api.get(f"/v1/accounts/{source['id']}", headers=user.headers).json()
    assert detail["balance"]["posted"] == "9.00"


@pytest.mark.parametrize("profile", ["memory", "postgres"])
def test_a_header_read_as_one_value_given_twice_is_refused(profile: str) -> None:
    """Two ``Idempotency-Key`` headers were joined into a third key (``k1, k2``): the
    transfer went through, and a retry with ``k1`` alone moved the money again. Served by
    uvicorn: the test client joins repeated headers itself before the app sees them."""
    import contextlib

    import httpx

    from tests.e2e.http_live import live_server, memory_settings, migrated_schema
    from tests.e2e.http_live import postgres_settings as live_postgres_settings

    with contextlib.ExitStack() as stack:
        settings = (
            memory_settings()
            if profile == "memory"
            else live_postgres_settings(stack.enter_context(migrated_schema()))
        )
        api = stack.enter_context(httpx.Client(base_url=stack.enter_context(live_server(settings))))
        login = {"username": f"u{secrets.token_hex(6)}", "password": secrets.token_hex(8)}
        assert api.post("/v1/auth/signup", json=login).status_code == 201
        token = api.post("/v1/auth/login", json=login).json()["tokens"]["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        source, target = (
            api.post("/v1/accounts", json={"holder_name": name}, headers=auth).json()["id"]
            for name in ("Source", "Target")
        )
        funded = api.post(
            "/v1/sandbox/deposits", json={"account_id": source, "amount": "10.00"}, headers=auth
        )
        assert funded.status_code == 201, funded.text
        body = json.dumps({"from_account_id": source, "to_account_id": target, "amount": "1.00"})
        base = [("Authorization", auth["Authorization"]), ("Content-Type", "application/json")]
        twice = {
            "Idempotency-Key": [("Idempotency-Key", "k1"), ("Idempotency-Key", "k2")],
            "Content-Type": [("Idempotency-Key", "k1"), ("content-type", "text/plain")],
            "X-Device-Id": [("Idempotency-Key", "k1"), ("X-Device-Id", "a"), ("X-Device-Id", "b")],
        }
        for name, extra in twice.items():
            response = api.post("/v1/transfers", content=body, headers=[*base, *extra])
            assert_problem(response, 400, "invalid_input", field=name)
            assert name in response.json()["detail"]
        balance = api.get(f"/v1/accounts/{source}", headers=auth).json()["balance"]
        assert balance["posted"] == "10.00"
        # k1 alone is a first request, then a replay
        once = [*base, ("Idempotency-Key", "k1")]
        first = api.post("/v1/transfers", content=body, headers=once)
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        again = api.post("/v1/transfers", content=body, headers=once)
        assert again.headers["idempotent-replayed"] == "true"
        balance = api.get(f"/v1/accounts/{source}", headers=auth).json()["balance"]
        assert balance["posted"] == "9.00"


def test_a_balance_above_the_input_range_can_still_be_read(
    api: TestClient[Litestar], user: User
) -> None:
    account = open_account(api, user)
    deposit(api, user, account["id"], MAX_INPUT)
    deposit(api, user, account["id"], MAX_INPUT)
    detail = api.get(f"/v1/accounts/{account['id']}", headers=user.headers)
    assert detail.status_code == 200, detail.text
    assert detail.json()["balance"]["posted"] == "19999999999.98"
    statement = api.get(f"/v1/accounts/{account['id']}/statement", headers=user.headers)
    assert statement.status_code == 200, statement.text
    lines = statement.json()["lines"]
    assert [line["balance_after"] for line in lines] == [MAX_INPUT, "19999999999.98"]
    assert [line["code"] for line in lines] == [1, 1]  # TransferCode.DEPOSIT


# -- NUL characters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"holder_name": "Maria\u0000"}, "holder_name"),
        ({"holder_name": "Maria", "holder_document": "529\u0000"}, "holder_document"),
        ({"holder_name": "Maria", "k\u0000": 1}, "body"),
    ],
)
def test_a_nul_in_any_string_is_refused_alike_on_every_profile(
    api: TestClient[Litestar], user: User, body: dict[str, Any], field: str
) -> None:
    response = api.post("/v1/accounts", json=body, headers=user.headers)
    assert_problem(response, 400, "invalid_input", field=field)
    assert "0x00" not in response.text
    assert "UTF8" not in response.text
    assert api.get("/v1/accounts", headers=user.headers).json() == []


def test_a_nul_in_the_path_or_the_query_is_refused(api: TestClient[Litestar], user: User) -> None:
    response = api.get("/v1/pix/payments/E123%00abc", headers=user.headers)
    assert_problem(response, 400, "invalid_input", field="path")
    response = api.get("/v1/pix/keys?account_id=%00", headers=user.headers)
    assert_problem(response, 400, "invalid_input", field="account_id")
    response = api.post("/v1/auth/login", json={"username": "a\u0000", "password": "x" * 12})
    assert_problem(response, 400, "invalid_input", field="username")
    raw = post_raw(api, "/v1/auth/login", '{"username": "a\x00", "password": "b"}')
    assert_problem(raw, 400, "invalid_input")  # a raw NUL is not JSON at all


# -- logs ---------------------------------------------------------------------------------------


def test_unauthenticated_pix_requests_write_no_traceback(
    api: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = {"Authorization": "Bearer not-a-token"}
    for _ in range(3):
        for headers in ({}, bad):
            assert api.get("/v1/pix/keys", headers=headers).status_code == 401
            assert api.get("/v1/pix/payments/E1", headers=headers).status_code == 401
            assert api.post("/v1/pix/payments", json={}, headers=headers).status_code == 401
            assert api.post("/v1/pix/charges", json={}, headers=headers).status_code == 401
            assert api.delete(f"/v1/pix/keys/{secrets.token_hex(16)}").status_code in (401, 404)
    assert [r for r in caplog.records if r.exc_info] == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "InvalidStateError" not in caplog.text
    assert "Traceback" not in caplog.text


def test_a_url_encoded_passphrase_is_masked_whole() -> None:
    masker = Masker()
    line = "GET /v1/accounts?password=three%20word%20phrase&limit=1"
    assert masker.mask_text(line) == "GET /v1/accounts?password=[REDACTED]&limit=1"
    assert masker.mask_text('{"password": "three word phrase"}') == '{"password": "[REDACTED]"}'
    assert masker.mask_text(masker.mask_text("token=abc]def")) == "token=[REDACTED]"


# -- headers ------------------------------------------------------------------------------------


def test_security_headers_on_every_answer(api: TestClient[Litestar]) -> None:
    password = "a passphrase of words"
    assert (
        api.post("/v1/auth/signup", json={"username": "h1", "password": password}).status_code
        == 201
    )
    login = api.post("/v1/auth/login", json={"username": "h1", "password": password})
    assert "access_token" in login.json()["tokens"]
    for response in (login, api.get("/health"), api.get("/nope"), api.get("/v1/accounts")):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers
        assert "strict-transport-security" not in response.headers  # off unless configured
    docs = api.get("/schema/swagger")
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in docs.headers.get("cache-control", "")


def test_hsts_is_sent_when_configured() -> None:
    settings = jwt_settings(
        http=HttpOptions(hsts_max_age_seconds=31536000, hsts_include_subdomains=True)
    )
    with TestClient(create_app(build_container(settings))) as api:
        header = api.get("/health").headers["strict-transport-security"]
    assert header == "max-age=31536000; includeSubDomains"


def test_uvicorn_trusts_only_the_configured_proxies_and_sends_no_server_header() -> None:
    default = uvicorn_options(HttpOptions())
    assert default == {
        "server_header": False,
        "proxy_headers": False,
        "forwarded_allow_ips": None,
        "http": ProblemHttpProtocol,  # bytes that are not HTTP get a problem document
    }
    behind = uvicorn_options(HttpOptions(forwarded_allow_ips="10.0.0.0/16, 10.1.0.0/16"))
    assert behind["proxy_headers"] is True
    assert behind["forwarded_allow_ips"] == ["10.0.0.0/16", "10.1.0.0/16"]
    assert Settings.from_env({"FINBANK_FORWARDED_ALLOW_IPS": "10.0.0.0/16"}).http == HttpOptions(
        forwarded_allow_ips="10.0.0.0/16"
    )


def test_the_auth_rate_limit_answers_429_with_retry_after() -> None:
    settings = jwt_settings(auth=AuthOptions(rate_limit_per_minute=2))
    with TestClient(create_app(build_container(settings))) as api:
        body = {"username": "nobody", "password": "x" * 12}
        statuses = [api.post("/v1/auth/login", json=body) for _ in range(3)]
    assert [r.status_code for r in statuses] == [401, 401, 429]
    limited = statuses[-1]
    assert_problem(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60


# -- problem details (a tiny app raising the errors through our handlers) -------------------------


@get("/wrong-code", sync_to_thread=False)
def wrong_code() -> None:
    raise IncorrectCode(attempts_left=3)


@get("/down", sync_to_thread=False)
def down() -> None:
    raise ServiceUnavailable("the ledger is unavailable")


def test_the_problem_carries_the_errors_details_and_503_says_when_to_retry() -> None:
    app = Litestar([wrong_code, down], exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    with TestClient(app) as client:
        wrong = client.get("/wrong-code")
        assert wrong.status_code == 401
        assert wrong.json()["attempts_left"] == 3
        unavailable = client.get("/down")
        assert unavailable.status_code == 503
        assert unavailable.headers["retry-after"] == "1"
        assert unavailable.json()["code"] == "service_unavailable"


def test_an_account_lockout_sends_retry_after_seconds_in_body_and_header(
    api: TestClient[Litestar],
) -> None:
    password = "the right passphrase"
    assert api.post("/v1/auth/signup", json={"username": "lk", "password": password}).status_code
    wrong = {"username": "lk", "password": "a wrong passphrase"}
    responses = [api.post("/v1/auth/login", json=wrong) for _ in range(11)]
    locked = responses[-1]
    assert_problem(locked, 429, "account_locked")
    seconds = locked.json()["retry_after_seconds"]
    assert seconds > 0
    assert locked.headers["retry-after"] == str(seconds)


class LedgerDown:
    async def lookup_accounts(self, ids: Any) -> list[Any]:
        raise OSError("connection refused")


def test_ready_answers_a_503_problem_with_retry_after_when_the_ledger_does_not() -> None:
    from dependency_injector import providers

    container = build_container(jwt_settings())
    with TestClient(create_app(container)) as api:
        assert api.get("/ready").status_code == 200
        with container.accounts.ledger.override(providers.Object(LedgerDown())):
            response = api.get("/ready")
    assert_problem(response, 503, "service_unavailable")
    assert response.headers["retry-after"] == "1"


# -- the real process: finbank serve ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("trust_loopback_proxy", [False, True])
def test_finbank_serve_keeps_metrics_on_their_own_port_and_sends_no_server_header(
    trust_loopback_proxy: bool,
) -> None:
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.e2e.http_live import free_port

    api_port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINBANK_")}
    env.update(
        FINBANK_JWT_SECRET=secrets.token_hex(32),
        FINBANK_HTTP_METRICS_PORT=str(metrics_port),
        FINBANK_HTTP_HSTS_MAX_AGE_SECONDS="600",
        FINBANK_LOG_LEVEL="WARNING",
        FINBANK_AUTH_RATE_LIMIT_PER_MINUTE="2",
    )
    if trust_loopback_proxy:  # as behind a load balancer on loopback
        env["FINBANK_FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    process = subprocess.Popen(
        [sys.executable, "-m", "finbank_cli", "serve", "--port", str(api_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    api, metrics = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{metrics_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{api}/health")
                httpx.get(f"{metrics}/metrics")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "finbank serve did not start"
                time.sleep(0.2)
        health = httpx.get(f"{api}/health")
        assert health.status_code == 200
        assert "server" not in health.headers
        assert health.headers["strict-transport-security"] == "max-age=600"
        assert httpx.get(f"{api}/metrics").status_code == 404
        scraped = httpx.get(f"{metrics}/metrics")
        assert scraped.status_code == 200
        assert "server" not in scraped.headers
        assert 'finbank_http_requests_total{method="GET",route="/health",status="200"}' in (
            scraped.text
        )
        # uvicorn trusts no proxy by default: a forged X-Forwarded-For does not buy a new
        # rate-limit bucket (FINBANK_AUTH_RATE_LIMIT_PER_MINUTE=2 per client address);
        # behind a trusted proxy, each forwarded client has its own
        login = {"username": "nobody", "password": "x" * 12}
        statuses = [
            httpx.post(f"{api}/v1/auth/login", json=login, headers={"X-Forwarded-For": ip})
            for ip in ("1.1.1.1", "2.2.2.2", "3.3.3.3")
        ]
        expected = [401, 401, 401] if trust_loopback_proxy else [401, 401, 429]
        assert [r.status_code for r in statuses] == expected
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode is not None


def test_body_errors_name_the_field_and_other_statuses_are_problems_too(
    api: TestClient[Litestar],
) -> None:
    unknown = api.post("/v1/auth/login", json={"username": "a", "password": "b", "role": 1})
    assert_problem(unknown, 400, "invalid_input", field="role")
    truncated = post_raw(api, "/v1/auth/login", '{"username": "a"')
    assert_problem(truncated, 400, "invalid_input")
    method = api.put("/v1/accounts")
    assert_problem(method, 405, "method_not_allowed")
    assert {m.strip() for m in method.headers["allow"].split(",")} == {"GET", "POST", "OPTIONS"}
    assert_problem(api.get("/v1/nothing-here"), 404, "route_not_found")
