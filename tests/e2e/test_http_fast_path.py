"""The HTTP fast path: what a request costs outside the bank, checked by behaviour.

- one access line per request (``finbank serve`` turns uvicorn's off), masked
  only in the fields a client can fill, identical whether it is written
  straight to finbank's handler or through ``logging``;
- no anyio task group per request: ``principal`` depends on ``bank``, so
  Litestar resolves them in turn;
- the heap frozen after startup and after each full collection, the young
  generation collected less often, everything swept now and then.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import secrets
import subprocess
import sys
import time
import urllib.request
import weakref
from collections.abc import Iterator
from typing import Any

import litestar._kwargs.kwargs_model as kwargs_model
import pytest
import structlog
from litestar import Litestar, Router, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ImproperlyConfiguredException
from litestar.testing import TestClient

from finbank_adapters.containers import build_container
from finbank_adapters.settings import HttpOptions, JwtOptions, Settings
from finbank_http import create_app
from finbank_http.app import GC_THRESHOLD_0, HeapSettler, require_authentication, uvicorn_config
from finbank_http.observability import flush_access_lines
from finbank_http.observability.logs import log_access
from finbank_http.observability.middleware import RequestContextMiddleware
from finbank_http.problems import EXCEPTION_HANDLERS
from finbank_http.security import AUTHENTICATED_OPT, authenticate_then, protected_opt
from tests.logging_support import finbank_handler_alone, finbank_logging_to

CPF_BARE = "52998224725"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    with finbank_logging_to(io.StringIO()) as stream:
        yield stream


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    settings = Settings(jwt=JwtOptions(secret=secrets.token_hex(32)))
    with TestClient(create_app(build_container(settings))) as api:
        yield api


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    flush_access_lines()  # those still waiting in finbank's handler
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "http.request"]


def bearer(client: TestClient[Litestar]) -> dict[str, str]:
    body = {"username": f"fast-{secrets.token_hex(4)}", "password": secrets.token_hex(8)}
    assert client.post("/v1/auth/signup", json=body).status_code == 201
    token = client.post("/v1/auth/login", json=body).json()["tokens"]["access_token"]
    return {"Authorization": f"Bearer {token}"}


# -- the access line -----------------------------------------------------------------------


def test_each_request_logs_one_access_line(
    client: TestClient[Litestar], log_stream: io.StringIO
) -> None:
    with finbank_handler_alone():
        for _ in range(3):
            assert client.get("/health").status_code == 200
    lines = access_lines(log_stream)
    assert len(lines) == 3
    assert {line["route"] for line in lines} == {"/health"}
    assert all(line["logger"] == "finbank.http.access" for line in lines)
    assert len({line["request_id"] for line in lines}) == 3


def test_what_a_client_fills_is_masked_and_the_template_is_not(
    client: TestClient[Litestar], log_stream: io.StringIO
) -> None:
    headers = bearer(client)
    chosen_id = f"id-{CPF_BARE}"  # well formed, so echoed; it looks like a document: masked
    with finbank_handler_alone():
        refused = client.get(f"/v1/accounts?password=hunter2&cpf={CPF_BARE}", headers=headers)
        echoed = client.get("/v1/accounts", headers={**headers, "X-Request-ID": chosen_id})

    output = log_stream.getvalue()
    assert refused.status_code == 400  # an unknown query parameter, logged all the same
    assert echoed.headers["x-request-id"] == chosen_id
    assert CPF_BARE not in output
    assert "hunter2" not in output
    with_query, listed = access_lines(log_stream)[-2:]
    assert with_query["route"] == "/v1/accounts"
    assert with_query["path"].startswith("/v1/accounts?")
    assert with_query["status"] == 400
    assert listed["path"] == listed["route"] == "/v1/accounts"  # a template: as it is
    assert listed["request_id"] == listed["correlation_id"] != chosen_id
    assert listed["request_id"].startswith("id-")


async def test_a_path_other_than_its_template_and_an_unknown_method_are_masked(
    log_stream: io.StringIO,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": f"X{CPF_BARE}",
        "path": f"/v1/docs/{CPF_BARE}",
        "path_template": "/v1/docs/{document:str}",
        "query_string": b"",
        "headers": [(b"X-Correlation-ID", f"flow-{CPF_BARE}".encode())],
    }
    with finbank_handler_alone():
        await RequestContextMiddleware(app)(scope, None, send)

    [line] = access_lines(log_stream)
    assert CPF_BARE not in log_stream.getvalue()
    assert line["method"] == "OTHER"
    assert line["path"].startswith("/v1/docs/")
    assert line["route"] == "/v1/docs/{document:str}"
    assert line["status"] == 418
    assert (b"x-correlation-id", f"flow-{CPF_BARE}".encode()) in sent[0]["headers"]


def test_the_direct_line_is_the_line_logging_would_write(log_stream: io.StringIO) -> None:
    logger = logging.getLogger("finbank.http.access")
    fields: dict[str, Any] = {"method": "POST", "route": "/v1/transfers", "path": "/v1/transfers"}
    fields |= {"status": 201, "duration_ms": 1.5}
    with structlog.contextvars.bound_contextvars(request_id="r-1", correlation_id="c-1"):
        with finbank_handler_alone():
            log_access(logger, fields)  # written directly
        other = logging.StreamHandler(io.StringIO())
        logging.getLogger().addHandler(other)  # now through logging, for both handlers
        try:
            log_access(logger, fields)
        finally:
            logging.getLogger().removeHandler(other)
    direct, through_logging = access_lines(log_stream)
    assert direct.pop("timestamp").endswith("Z")
    assert through_logging.pop("timestamp").endswith("Z")
    assert direct == through_logging
    assert list(direct) == list(through_logging)  # same fields, same order


def test_context_an_embedder_binds_is_still_masked_on_the_access_line(
    log_stream: io.StringIO,
) -> None:
    logger = logging.getLogger("finbank.http.access")
    fields: dict[str, Any] = {"method": "GET", "route": "/health", "path": "/health"}
    fields |= {"status": 200, "duration_ms": 0.1}
    with (
        structlog.contextvars.bound_contextvars(request_id="r-2", password="s3cr3t-pass"),
        finbank_handler_alone(),
    ):
        log_access(logger, fields)
    [line] = access_lines(log_stream)
    assert line["password"] == "[REDACTED]"
    assert line["request_id"] == "r-2"


def test_serve_turns_uvicorns_access_log_off() -> None:
    config = uvicorn_config(object(), "127.0.0.1", 8000, HttpOptions())
    assert config.access_log is False
    assert config.log_config is None
    assert config.server_header is False


@pytest.mark.slow
def test_a_served_request_leaves_exactly_one_access_line(unused_tcp_port: int) -> None:
    env = {"FINBANK_LOG_LEVEL": "INFO", "FINBANK_HTTP_METRICS_PORT": "0", "PATH": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "finbank_cli", "serve", "--port", str(unused_tcp_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{unused_tcp_port}/health", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.2)
        for _ in range(2):
            urllib.request.urlopen(f"http://127.0.0.1:{unused_tcp_port}/health", timeout=5)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    records = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert sum(r.get("event") == "http.request" for r in records) == 3  # the first poll too
    assert not [r for r in records if r.get("logger") == "uvicorn.access"]


# -- dependencies ---------------------------------------------------------------------------


@pytest.fixture
def task_groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the task groups Litestar's dependency resolution opens."""
    opened: list[int] = []
    original = kwargs_model.create_task_group  # type: ignore[attr-defined]

    def counting() -> Any:
        opened.append(1)
        return original()

    monkeypatch.setattr(kwargs_model, "create_task_group", counting)
    return opened


def test_independent_dependencies_would_open_a_task_group(task_groups: list[int]) -> None:
    """The instrument works: two dependencies that do not depend on each other."""

    async def one() -> int:
        return 1

    async def two() -> int:
        return 2

    @get("/both", dependencies={"one": Provide(one), "two": Provide(two)}, sync_to_thread=False)
    def both(one: NamedDependency[int], two: NamedDependency[int]) -> int:
        return one + two

    with TestClient(Litestar([both])) as api:
        assert api.get("/both").json() == 3
    assert task_groups


def test_a_protected_request_opens_no_task_group(
    client: TestClient[Litestar], task_groups: list[int]
) -> None:
    headers = bearer(client)
    task_groups.clear()
    opened = client.post("/v1/accounts", json={"holder_name": "Ana"}, headers=headers)
    listed = client.get("/v1/accounts", headers=headers)
    assert opened.status_code == 201
    assert [a["id"] for a in listed.json()] == [opened.json()["id"]]
    assert task_groups == []


# -- the collector ----------------------------------------------------------------------------


async def test_the_heap_settler_freezes_survivors_and_puts_everything_back_on_shutdown() -> None:
    before = gc.get_threshold()
    settler = HeapSettler(sweep_seconds=0.01)
    try:
        await settler.startup()
        assert gc.get_freeze_count() > 0  # startup's survivors
        assert gc.get_threshold() == (GC_THRESHOLD_0, before[1], before[2])
        gc.unfreeze()
        survivors: list[list[int]] = [[] for _ in range(100)]  # tracked by the collector
        gc.collect()  # a full collection: its survivors are frozen by the callback
        assert gc.get_freeze_count() >= len(survivors)
        await asyncio.sleep(0.05)  # the periodic sweep unfroze, collected and froze again
        assert gc.get_freeze_count() > 0
    finally:
        await settler.shutdown()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert all(getattr(cb, "__name__", "") != "_freeze_survivors" for cb in gc.callbacks)


async def test_the_survivors_of_a_middle_generation_collection_are_frozen_too() -> None:
    # the memory profile keeps most of what a request allocates, so young survivors pile
    # up in the middle generation: left there, each of its collections scanned ~100k
    # objects (25-35 ms pauses under load, the p99); frozen, the next one scans only what
    # was promoted since
    settler = HeapSettler(sweep_seconds=3600)
    try:
        await settler.startup()
        gc.unfreeze()
        assert gc.get_freeze_count() == 0
        survivors: list[list[int]] = [[] for _ in range(100)]  # tracked by the collector
        gc.collect(0)  # the youngest generation only: nothing frozen
        assert gc.get_freeze_count() == 0
        gc.collect(1)  # the middle generation: its survivors frozen by the callback
        assert gc.get_freeze_count() >= len(survivors)
    finally:
        await settler.shutdown()
    assert gc.get_freeze_count() == 0


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_sweep_that_finds_nothing_doubles_the_wait_up_to_the_cap() -> None:
    settler = HeapSettler(sweep_seconds=600, max_sweep_seconds=2000)
    gc.collect()
    gc.freeze()
    try:
        assert settler.sweep_once(600) == 1200
        assert settler.sweep_once(1200) == 2000  # capped
        assert settler.sweep_once(2000) == 2000
        assert gc.get_freeze_count() > 0  # frozen again afterwards
    finally:
        gc.unfreeze()


def test_a_sweep_that_finds_garbage_among_the_frozen_brings_the_wait_back() -> None:
    settler = HeapSettler(sweep_seconds=600, max_sweep_seconds=2000)
    gc.collect()
    gc.freeze()
    try:
        cycles = [_Cycle() for _ in range(gc.get_freeze_count() // 50 + 1000)]
        gc.freeze()  # frozen while alive, as a request's survivors are
        one = weakref.ref(cycles[0])
        del cycles  # now garbage, but frozen: only a sweep finds it
        gc.collect()
        assert one() is not None  # a frozen cycle outlives an ordinary collection
        assert settler.sweep_once(1200) == 600
        assert one() is None  # the sweep freed it
    finally:
        gc.unfreeze()


# -- authentication without a guard --------------------------------------------------------


def test_a_protected_route_with_a_before_request_of_its_own_is_refused_at_startup() -> None:
    """Litestar keeps the closest ``before_request``: one set under the protected router
    would silence the authentication, so such an app is not built."""

    async def own_hook(request: Any) -> None:
        return None

    @get("/mine", sync_to_thread=False)
    def plain() -> str:
        return "ok"

    @get("/theirs", sync_to_thread=False, before_request=own_hook)
    def overriding() -> str:
        return "ok"

    hook = authenticate_then(own_hook)
    fine = Litestar([Router("/", route_handlers=[plain], opt=protected_opt())], before_request=hook)
    require_authentication(fine, hook)  # no complaint
    unsafe = Litestar(
        [Router("/", route_handlers=[plain, overriding], opt=protected_opt())],
        before_request=hook,
    )
    with pytest.raises(ImproperlyConfiguredException, match="overriding"):
        require_authentication(unsafe, hook)


def test_every_protected_route_of_the_app_authenticates_in_its_before_request(
    client: TestClient[Litestar],
) -> None:
    protected = [
        handler
        for route in client.app.routes
        for handler in getattr(route, "route_handlers", ())
        if handler.opt.get(AUTHENTICATED_OPT)
    ]
    assert len(protected) > 20
    hooks = {handler.resolve_before_request() for handler in protected}
    assert len(hooks) == 1
    assert [hook.__name__ for hook in hooks] == ["authenticate_then"]


def test_request_ids_are_32_hex_digits_and_differ(client: TestClient[Litestar]) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_ids_and_security_headers_are_on_every_answer_once(
    client: TestClient[Litestar],
) -> None:
    headers = bearer(client)
    for response in (
        client.get("/health"),
        client.get("/v1/accounts", headers=headers),
        client.get("/v1/accounts"),  # 401
        client.post("/v1/transfers", content="{", headers=headers),  # 415 (no JSON type)
    ):
        raw = [name.lower() for name, _ in response.headers.multi_items()]
        for name in ("x-request-id", "x-correlation-id", "x-content-type-options"):
            assert raw.count(name) == 1, (response.status_code, raw)
        assert raw.count("cache-control") == 1
        assert "server" not in raw
    schema = client.get("/schema/openapi.json")
    assert schema.headers["x-content-type-options"] == "nosniff"
    assert "x-frame-options" not in schema.headers
    assert len(schema.headers["x-request-id"]) == 32


def test_an_unmatched_path_is_logged_once_with_its_ids(
    client: TestClient[Litestar], log_stream: io.StringIO
) -> None:
    with finbank_handler_alone():
        response = client.get(f"/v1/nothing/{CPF_BARE}")
    assert response.status_code == 404
    assert len(response.headers["x-request-id"]) == 32
    assert response.headers["x-content-type-options"] == "nosniff"
    [line] = access_lines(log_stream)
    assert line["route"] == "unmatched"
    assert line["status"] == 404
    assert line["request_id"] == response.headers["x-request-id"]
    assert CPF_BARE not in log_stream.getvalue()


def test_a_route_that_did_not_authenticate_gets_no_principal() -> None:
    """The ``principal`` dependency only hands over what the authentication kept."""
    from finbank import Bank
    from finbank_http.deps import provide_principal

    unopened = Bank.__new__(Bank)  # never called: only its type is checked

    @get("/who", sync_to_thread=False)
    def who(principal: NamedDependency[Any]) -> str:
        return str(principal)

    app = Litestar(
        [who],
        dependencies={
            "bank": Provide(lambda: unopened, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    with TestClient(app) as api:
        response = api.get("/who", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 401
