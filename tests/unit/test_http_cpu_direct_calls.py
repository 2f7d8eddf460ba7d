"""Handlers called directly from the app's ``before_request`` (``finbank_http.direct_calls``)
answer exactly as when Litestar extracts their arguments: the same status, problem+json
and headers for every malformed request, the same receipt for a well-formed one; and the
direct path is really the one taken for a well-formed request."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated, Any

import litestar._kwargs.kwargs_model as kwargs_model
import pytest
from litestar import Litestar, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody
from litestar.testing import TestClient

from finbank_adapters.containers import build_container
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.settings import JwtOptions, Settings
from finbank_http import create_app
from finbank_http.direct_calls import DirectCalls, plan_for

#: headers that differ on every answer
_PER_REQUEST = {"x-request-id", "x-correlation-id", "date"}


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> list[DirectCalls]:
    """The ``DirectCalls`` of the apps built while the test runs."""
    seen: list[DirectCalls] = []
    original = DirectCalls.install

    def install(self: DirectCalls, app: Litestar) -> None:
        seen.append(self)
        original(self, app)

    monkeypatch.setattr(DirectCalls, "install", install)
    return seen


@pytest.fixture
def client(installed: list[DirectCalls]) -> Iterator[TestClient[Litestar]]:
    settings = Settings(jwt=JwtOptions(secret=secrets.token_hex(32)))
    with TestClient(create_app(build_container(settings))) as api:
        yield api


@pytest.fixture
def extractions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time Litestar extracts a handler's arguments itself."""
    calls: list[str] = []
    original = kwargs_model.KwargsModel.to_kwargs

    async def to_kwargs(self: Any, connection: Any) -> dict[str, Any]:
        calls.append(connection.scope["path"])
        return await original(self, connection)

    monkeypatch.setattr(kwargs_model.KwargsModel, "to_kwargs", to_kwargs)
    return calls


class Bank:
    def __init__(self, client: TestClient[Litestar]) -> None:
        self.client = client
        body = {"username": f"direct-{secrets.token_hex(4)}", "password": secrets.token_hex(8)}
        assert client.post("/v1/auth/signup", json=body).status_code == 201
        token = client.post("/v1/auth/login", json=body).json()["tokens"]["access_token"]
        self.auth = {"Authorization": f"Bearer {token}"}
        self.source = self.open_account()
        self.target = self.open_account()
        deposited = client.post(
            "/v1/sandbox/deposits",
            json={"account_id": self.source, "amount": "1000.00"},
            headers=self.auth,
        )
        assert deposited.status_code == 201, deposited.text

    def open_account(self) -> str:
        opened = self.client.post("/v1/accounts", json={"holder_name": "D"}, headers=self.auth)
        assert opened.status_code == 201, opened.text
        account_id: str = opened.json()["id"]
        return account_id

    def transfer_body(self, amount: str = "1.00") -> str:
        return (
            f'{{"from_account_id": "{self.source}", "to_account_id": "{self.target}", '
            f'"amount": "{amount}"}}'
        )

    def pix_body(self) -> str:
        return f'{{"account_id": "{self.source}", "key": "{PEER_KEY_EMAIL}", "amount": "0.50"}}'

    def post(
        self, path: str, content: str | None, headers: list[tuple[str, str | bytes]]
    ) -> tuple[int, dict[str, str], bytes]:
        """POST through the app as a server would call it: the raw headers as given (names'
        case and repeated headers kept, which the test client merges), the status, the
        headers but the per-request ids, the body."""
        raw = [(b"host", b"testserver")]
        raw += [(k.lower().encode(), v.encode()) for k, v in self.auth.items()]
        raw += [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in headers]
        body = b"" if content is None else content.encode()
        if content is not None:
            raw += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        answer: tuple[int, dict[str, str], bytes] = self.client.blocking_portal.call(
            _asgi_post, self.client.app, path, raw, body
        )
        return answer


async def _asgi_post(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    received = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    kept = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in start["headers"]
        if k.decode("latin-1").lower() not in _PER_REQUEST
    }
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), kept, content


@pytest.fixture
def bank(client: TestClient[Litestar]) -> Bank:
    return Bank(client)


def litestar_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on every handler's arguments are extracted by Litestar."""

    async def declined(self: DirectCalls, request: Request[Any, Any, Any]) -> Any:
        return None

    monkeypatch.setattr(DirectCalls, "__call__", declined)


def test_the_busiest_routes_are_called_directly(
    client: TestClient[Litestar], installed: list[DirectCalls]
) -> None:
    [calls] = installed
    names = calls.handler_names
    assert "create" in names  # POST /v1/transfers
    assert "send" in names  # POST /v1/pix/payments
    assert "open" not in names  # it depends on ``principal`` and ``bank``


def test_a_well_formed_transfer_takes_the_direct_path(bank: Bank, extractions: list[str]) -> None:
    status, _, _ = bank.post("/v1/transfers", bank.transfer_body(), [("Idempotency-Key", "d-1")])
    assert status == 201
    assert extractions == []


MALFORMED_TRANSFERS: list[tuple[str, list[tuple[str, str | bytes]], str | None]] = [
    ("no key", [], "valid"),
    ("empty key", [("Idempotency-Key", "")], "valid"),
    ("key too long", [("Idempotency-Key", "k" * 256)], "valid"),
    ("empty key and bad body", [("Idempotency-Key", "")], '{"from_account_id": "x"}'),
    ("no key and bad body", [], '{"from_account_id": "x"}'),
    ("malformed JSON", [("Idempotency-Key", "m-1")], '{"from_account_id": '),
    ("malformed JSON, no key", [], '{"from_account_id": '),
    ("no body", [("Idempotency-Key", "m-2")], None),
    ("empty body", [("Idempotency-Key", "m-3")], ""),
    ("null body", [("Idempotency-Key", "m-4")], "null"),
    ("array body", [("Idempotency-Key", "m-5")], "[]"),
    ("unknown field", [("Idempotency-Key", "m-6")], '{"amount": "1.00", "x": 1}'),
    ("bad amount", [("Idempotency-Key", "m-7")], "amount:-1.00"),
    ("first key empty", [("Idempotency-Key", ""), ("Idempotency-Key", "m-8")], "valid"),
    # a key given twice is refused, not read as either (nor as both joined)
    ("two keys", [("Idempotency-Key", "m-9"), ("Idempotency-Key", "m-10")], "valid"),
    ("two keys, second empty", [("Idempotency-Key", "m-11"), ("Idempotency-Key", "")], "valid"),
    ("latin-1 key too long", [("Idempotency-Key", "é".encode("latin-1") * 256)], "valid"),
]


@pytest.mark.parametrize(
    ("headers", "content"),
    [(h, c) for _, h, c in MALFORMED_TRANSFERS],
    ids=[name for name, _, _ in MALFORMED_TRANSFERS],
)
def test_a_malformed_transfer_gets_the_answer_litestar_gives(
    bank: Bank,
    monkeypatch: pytest.MonkeyPatch,
    headers: list[tuple[str, str | bytes]],
    content: str | None,
) -> None:
    if content == "valid":
        content = bank.transfer_body()
    elif content is not None and content.startswith("amount:"):
        content = bank.transfer_body(content.removeprefix("amount:"))
    direct = bank.post("/v1/transfers", content, headers)
    litestar_only(monkeypatch)
    assert direct == bank.post("/v1/transfers", content, headers)
    assert direct[0] == 400


@pytest.mark.parametrize(
    "headers",
    [
        [("Idempotency-Key", "w-1")],
        [("IDEMPOTENCY-KEY", "w-2")],
        [("Idempotency-Key", "é".encode("latin-1") * 10)],
    ],
    ids=["plain", "upper-case name", "latin-1"],
)
def test_a_transfer_made_directly_is_replayed_by_litestar_and_the_reverse(
    bank: Bank, monkeypatch: pytest.MonkeyPatch, headers: list[tuple[str, str | bytes]]
) -> None:
    body = bank.transfer_body()
    status, first_headers, first = bank.post("/v1/transfers", body, headers)
    assert status == 201
    assert "idempotent-replayed" not in first_headers
    other: list[tuple[str, str | bytes]] = [
        (name, (value + b"-o") if isinstance(value, bytes) else (value + "-o") if value else value)
        for name, value in headers
    ]
    with monkeypatch.context() as patched:
        litestar_only(patched)
        status, replay_headers, replayed = bank.post("/v1/transfers", body, headers)
        assert (status, replayed) == (201, first)
        assert replay_headers == {**first_headers, "idempotent-replayed": "true"}
        status, _, other_first = bank.post("/v1/transfers", body, other)
        assert status == 201
    # Litestar made it, the direct path replays it
    status, replay_headers, replayed = bank.post("/v1/transfers", body, other)
    assert (status, replayed) == (201, other_first)
    assert replay_headers["idempotent-replayed"] == "true"


MALFORMED_PAYMENTS: list[tuple[str, list[tuple[str, str | bytes]], str | None]] = [
    ("no key", [], "valid"),
    ("device id too long", [("Idempotency-Key", "p-1"), ("X-Device-Id", "d" * 129)], "valid"),
    ("device id empty", [("Idempotency-Key", "p-5"), ("X-Device-Id", "")], "valid"),
    ("both headers bad", [("Idempotency-Key", ""), ("X-Device-Id", "d" * 129)], "valid"),
    ("bad body and device id", [("Idempotency-Key", "p-2"), ("X-Device-Id", "d" * 129)], "{}"),
    ("malformed JSON", [("Idempotency-Key", "p-3")], "{"),
    (
        "two device ids",
        [("Idempotency-Key", "p-4"), ("X-Device-Id", "a"), ("X-Device-Id", "b")],
        "valid",
    ),
]


@pytest.mark.parametrize(
    ("headers", "content"),
    [(h, c) for _, h, c in MALFORMED_PAYMENTS],
    ids=[name for name, _, _ in MALFORMED_PAYMENTS],
)
def test_a_malformed_payment_gets_the_answer_litestar_gives(
    bank: Bank,
    monkeypatch: pytest.MonkeyPatch,
    headers: list[tuple[str, str | bytes]],
    content: str | None,
) -> None:
    if content == "valid":
        content = bank.pix_body()
    direct = bank.post("/v1/pix/payments", content, headers)
    litestar_only(monkeypatch)
    assert direct == bank.post("/v1/pix/payments", content, headers)
    assert direct[0] == 400


@pytest.mark.parametrize("device", [None, "phone-1"], ids=["no device id", "device id"])
def test_a_payment_made_directly_is_replayed_by_litestar(
    bank: Bank, monkeypatch: pytest.MonkeyPatch, extractions: list[str], device: str | None
) -> None:
    headers: list[tuple[str, str | bytes]] = [("Idempotency-Key", f"pay-{device}")]
    if device is not None:
        headers.append(("X-Device-Id", device))
    status, first_headers, first = bank.post("/v1/pix/payments", bank.pix_body(), headers)
    assert status == 201, first
    assert extractions == []
    litestar_only(monkeypatch)
    status, replay_headers, replayed = bank.post("/v1/pix/payments", bank.pix_body(), headers)
    assert (status, replayed) == (201, first)
    assert replay_headers == {**first_headers, "idempotent-replayed": "true"}
    assert extractions == ["/v1/pix/payments"]


# -- which handlers are planned ---------------------------------------------------------


def _plans_of(app: Litestar) -> dict[str, bool]:
    planned: dict[str, bool] = {}
    for route in app.routes:
        for handler, model in getattr(route, "route_handler_map", {}).values():
            planned[handler.handler_name] = plan_for(handler, model) is not None
    return planned


Key = Annotated[str, HeaderParameter(name="K")]
Note = Annotated[str | None, HeaderParameter(name="X-Note", required=False)]


def test_only_handlers_of_the_simple_shape_are_planned() -> None:
    @post("/response")
    async def answers(
        request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]], key: Key
    ) -> Response[Any]:
        return Response(data)

    @post("/falsy")
    async def may_be_falsy(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return {}  # Litestar would call it again after an empty answer: never direct

    @get("/query")
    async def with_query(q: FromQuery[str]) -> Response[str]:
        return Response(q)

    @get("/dependency", dependencies={"x": Provide(lambda: 1, sync_to_thread=False)})
    async def with_dependency(x: NamedDependency[int]) -> Response[int]:
        return Response(x)

    @get("/path/{n:int}")
    async def with_path(n: FromPath[int]) -> Response[int]:
        return Response(n)

    @get("/many", cache=True)
    async def cached(request: Request[Any, Any, Any]) -> Response[str]:
        return Response("x")

    app = Litestar([answers, may_be_falsy, with_query, with_dependency, with_path, cached])
    planned = _plans_of(app)
    mine = {"answers", "may_be_falsy", "with_query", "with_dependency", "with_path", "cached"}
    assert {name: planned[name] for name in planned if name in mine} == {
        "answers": True,
        "may_be_falsy": False,
        "with_query": False,
        "with_dependency": False,
        "with_path": False,
        "cached": False,
    }


def test_an_optional_header_absent_gets_its_default() -> None:
    @post("/echo")
    async def echo(data: JSONBody[dict[str, Any]], note: Note = None) -> Response[Any]:
        return Response({"data": data, "note": note})

    calls = DirectCalls()
    app = Litestar([echo], before_request=calls)
    calls.install(app)
    assert calls.handler_names == ["echo"]
    with TestClient(app) as api:
        assert api.post("/echo", json={"a": 1}).json() == {"data": {"a": 1}, "note": None}
        answer = api.post("/echo", json={"a": 1}, headers={"X-Note": "n"}).json()
        assert answer == {"data": {"a": 1}, "note": "n"}


class Shout:
    """A header type only the app's type decoders know."""

    def __init__(self, text: str) -> None:
        self.text = text.upper()


ShoutHeader = Annotated[Shout, HeaderParameter(name="X-Shout")]


def test_a_value_only_litestar_decodes_is_converted_by_litestar() -> None:
    @post("/shout")
    async def shout(request: Request[Any, Any, Any], value: ShoutHeader) -> Response[Any]:
        return Response({"shout": value.text, "path": request.url.path})

    calls = DirectCalls()
    app = Litestar(
        [shout],
        before_request=calls,
        type_decoders=[(lambda t: t is Shout, lambda t, v: t(v))],
        signature_types=[Shout],
    )
    calls.install(app)
    assert calls.handler_names == ["shout"]
    with TestClient(app) as api:
        answer = api.post("/shout", headers={"X-Shout": "hi"})
        assert answer.json() == {"shout": "HI", "path": "/shout"}
