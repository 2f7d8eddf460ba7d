"""Observability: /metrics, request ids, and logs that never show personal data
or credentials — checked on the real processes (`finbank serve`, `finbank demo`)."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from litestar import Litestar
from litestar.testing import TestClient

from finbank_adapters.containers import build_container
from finbank_adapters.settings import HttpOptions, Settings
from finbank_http import create_app
from finbank_http.observability import LogConfig, Masker, configure_logging, metrics, metrics_app

CPF = "529.982.247-25"
CPF_BARE = "52998224725"
CNPJ = "11.222.333/0001-81"
EMAIL_KEY = "maria.silva@example.com"
PHONE_KEY = "+5511987654321"
EVP_KEY = str(uuid.uuid4())
TOTP = "482913"


# -- /metrics ------------------------------------------------------------------------------


@pytest.fixture
def metrics_client() -> Iterator[TestClient[Litestar]]:
    """``/metrics`` where ``finbank serve`` answers it: its own listener, not the API port."""
    with TestClient(metrics_app()) as test_client:
        yield test_client


def test_metrics_are_not_on_the_api_port_unless_the_setting_asks(
    client: TestClient[Litestar],
) -> None:
    assert client.get("/metrics").status_code == 404
    settings = Settings(http=HttpOptions(metrics_on_api_port=True))
    with TestClient(create_app(build_container(settings))) as on_api:
        assert on_api.get("/metrics").status_code == 200


def test_metrics_exposes_the_listed_series(
    client: TestClient[Litestar], metrics_client: TestClient[Litestar]
) -> None:
    assert client.get("/health").status_code == 200
    metrics.observe_ledger_batch(3)
    metrics.set_outbox_backlog(7)
    metrics.set_consumer_lag("finbank-pix-settlement", "finbank.pix.v1", 0, 11)

    response = metrics_client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    for series in (
        'finbank_http_requests_total{method="GET",route="/health",status="200"}',
        'finbank_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"}',
        'finbank_pix_payments_total{status="SETTLED"}',
        "finbank_ledger_batch_size_bucket",
        "finbank_outbox_backlog 7.0",
        'finbank_consumer_lag{group="finbank-pix-settlement",partition="0",'
        'topic="finbank.pix.v1"} 11.0',
        "process_cpu_seconds_total",
    ):
        assert series in body, series


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return value or 0.0


def test_payments_by_status_count_what_the_pix_code_reports() -> None:
    before = sample("finbank_pix_payments_total", status="REJECTED")
    metrics.pix_payment("rejected")
    metrics.pix_payment("REJECTED")
    assert sample("finbank_pix_payments_total", status="REJECTED") == before + 2


def test_requests_are_counted_by_route_template_not_by_raw_path(
    client: TestClient[Litestar], metrics_client: TestClient[Litestar]
) -> None:
    account_id = str(uuid.uuid4())
    client.get(f"/v1/accounts/{account_id}")  # 401 without a token
    body = metrics_client.get("/metrics").text
    assert account_id not in body
    assert re.search(r'finbank_http_requests_total\{method="GET",route="/v1/accounts/\{', body)


# -- request and correlation ids ----------------------------------------------------------------


def test_a_request_without_ids_gets_generated_ones_echoed(client: TestClient[Litestar]) -> None:
    response = client.get("/health")
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.headers["x-correlation-id"] == request_id
    assert client.get("/health").headers["x-request-id"] != request_id


def test_the_callers_ids_are_echoed_back(client: TestClient[Litestar]) -> None:
    response = client.get(
        "/health", headers={"X-Request-ID": "req-1", "X-Correlation-ID": "pix-flow:42"}
    )
    assert response.headers["x-request-id"] == "req-1"
    assert response.headers["x-correlation-id"] == "pix-flow:42"


def test_malformed_ids_are_replaced_not_echoed(client: TestClient[Litestar]) -> None:
    response = client.get(
        "/health", headers={"X-Request-ID": "a b<script>", "X-Correlation-ID": "x" * 300}
    )
    assert response.headers["x-request-id"] != "a b<script>"
    assert response.headers["x-correlation-id"] == response.headers["x-request-id"]


def test_log_lines_of_a_request_carry_its_ids(
    client: TestClient[Litestar], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogConfig(level="INFO", json=True))
    try:
        client.get("/health", headers={"X-Request-ID": "req-77", "X-Correlation-ID": "corr-77"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        reset_logging()
    access = [line for line in lines if line.get("event") == "http.request"]
    assert access, lines
    assert access[-1]["request_id"] == "req-77"
    assert access[-1]["correlation_id"] == "corr-77"
    assert access[-1]["route"] == "/health"
    assert access[-1]["status"] == 200


def reset_logging() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "finbank":
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


# -- masking --------------------------------------------------------------------------------


def test_the_masker_redacts_nested_fields_and_free_text() -> None:
    event: dict[str, Any] = {
        "event": f"login for {CPF} with Bearer abc.def.ghi from {EMAIL_KEY}",
        "user": {"password": "hunter2", "cpf": CPF_BARE, "code": TOTP},
        "keys": [{"pix_key": EVP_KEY}, {"key": PHONE_KEY}],
        "error": {"code": "insufficient_funds"},
        "amount_cents": 12345,
    }
    masked = json.dumps(Masker()(None, "info", event))
    for secret in (CPF, CPF_BARE, EMAIL_KEY, PHONE_KEY, EVP_KEY, TOTP, "hunter2", "abc.def.ghi"):
        assert secret not in masked
    assert "insufficient_funds" in masked  # error codes are not OTPs
    assert "12345" in masked  # amounts only when configured
    assert "12345" not in json.dumps(Masker(mask_amounts=True)(None, "info", event))


def test_the_masker_finds_documents_keys_and_tokens_in_text() -> None:
    masker = Masker()
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmEifQ.c2lnbmF0dXJl"
    text = (
        f"cnpj {CNPJ} alt 12.ABC.345/01DE-35 phone +55 (11) 98765-4321 token {jwt} "
        f"chave={EVP_KEY} otp={TOTP} q=email%3D{EMAIL_KEY.replace('@', '%40')}"
    )
    masked = masker.mask_text(text)
    for secret in (CNPJ, "12.ABC.345/01DE-35", "98765-4321", jwt, EVP_KEY, TOTP, "maria.silva"):
        assert secret not in masked, secret


@pytest.mark.parametrize(
    "written",
    [
        "529.982.247-25",  # formatted
        "52998224725",  # bare
        "529.982247-25",  # half-way, as people type them into forms
        "529982.247-25",
        "529.982.24725",
        "529982247-25",
        "529 982 247 25",  # read out in groups
        "529.982.247 25",
    ],
)
def test_the_masker_finds_a_cpf_however_far_it_was_formatted(written: str) -> None:
    masked = Masker().mask_text(f"titular {written}, doc ({written}) e {written}.")
    assert masked == "titular [CPF], doc ([CPF]) e [CPF].", masked


@pytest.mark.parametrize(
    "kept",
    [
        "192.168.100.10",  # a dotted quad's groups are 3-3-3-2 digits, but no CPF ends in a dot
        "2026-12-07",
        "529.982.247",  # nine digits
        "5299822472512",  # thirteen
        "R$ 1.234.567,89",
    ],
)
def test_the_masker_leaves_numbers_that_are_no_cpf(kept: str) -> None:
    assert Masker().mask_text(f"at {kept} now") == f"at {kept} now"


# -- the real processes ---------------------------------------------------------------------


def finbank(*args: str, env: dict[str, str]) -> list[str]:
    return [sys.executable, "-m", "finbank_cli", *args]


def debug_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINBANK_")}
    env.update(FINBANK_LOG_LEVEL="DEBUG", FINBANK_LOG_FORMAT="json", **extra)
    return env


def call(
    base: str, method: str, path: str, body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - our own server on loopback
        base + path, data=data, method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1):  # noqa: S310
                return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.2)


def assert_nothing_in_clear(output: str, secrets_in_play: list[str]) -> None:
    leaked = [s for s in secrets_in_play if s in output]
    assert leaked == [], f"in clear in the logs: {leaked}"
    assert not re.search(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.", output), "a JWT leaked"


@pytest.mark.slow
def test_serve_logs_nothing_personal_or_secret_at_debug(unused_tcp_port: int) -> None:
    password = f"Pw-{secrets.token_hex(12)}"
    username = f"obs-{uuid.uuid4().hex[:8]}"
    base = f"http://127.0.0.1:{unused_tcp_port}"
    env = debug_env(FINBANK_JWT_SECRET=secrets.token_hex(32))
    process = subprocess.Popen(
        finbank("serve", "--port", str(unused_tcp_port), "--log-level", "debug", env=env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        wait_until_up(base, process)
        assert (
            call(base, "POST", "/v1/auth/signup", {"username": username, "password": password})[0]
            == 201
        )
        status, login = call(
            base, "POST", "/v1/auth/login", {"username": username, "password": password}
        )
        assert status == 200
        token = login["tokens"]["access_token"]
        bearer = {"Authorization": f"Bearer {token}", "X-Correlation-ID": "obs-corr-1"}
        query = urllib.parse.urlencode(
            {
                "cpf": CPF,
                "doc": CPF_BARE,
                "cnpj": CNPJ,
                "key": EMAIL_KEY,
                "phone": PHONE_KEY,
                "evp": EVP_KEY,
                "totp": TOTP,
                "password": password,
            }
        )
        # unknown query parameters are refused (400), and the line is logged masked
        assert call(base, "GET", f"/v1/accounts?{query}", headers=bearer)[0] == 400
        call(base, "GET", f"/v1/no-such-route/{CPF_BARE}?{query}", headers=bearer)
        call(base, "POST", "/v1/accounts", {"holder_name": f"Maria {CPF}"}, headers=bearer)
        call(base, "POST", "/v1/auth/mfa", {"challenge_id": secrets.token_hex(16), "code": TOTP})
        call(base, "POST", "/v1/auth/login", {"username": CPF, "password": password})
        call(base, "POST", "/v1/auth/logout", {}, headers=bearer)
    finally:
        process.terminate()
        out, err = process.communicate(timeout=15)
    output = out.decode() + err.decode()

    assert_nothing_in_clear(
        output,
        [
            CPF,
            CPF_BARE,
            CNPJ,
            EMAIL_KEY,
            "maria.silva",
            PHONE_KEY,
            "5511987654321",
            EVP_KEY,
            TOTP,
            password,
            token,
            token.split(".")[-1],
            env["FINBANK_JWT_SECRET"],
        ],
    )
    # ...and the logs are there, as JSON, with the ids and the redactions
    records = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert any(
        r.get("event") == "http.request" and r.get("correlation_id") == "obs-corr-1"
        for r in records
    )
    assert any(r.get("logger", "").startswith("uvicorn") for r in records), "uvicorn routed through"
    assert "[REDACTED]" in output
    assert any(r.get("level") == "debug" for r in records), "DEBUG was on"


@pytest.mark.slow
def test_a_full_demo_at_debug_logs_no_token_or_secret() -> None:
    jwt_secret = secrets.token_hex(32)
    env = debug_env(FINBANK_JWT_SECRET=jwt_secret)
    result = subprocess.run(
        finbank("demo", env=env), capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Every step behaved." in result.stdout
    output = result.stdout + result.stderr
    assert_nothing_in_clear(output, [jwt_secret])
    # the demo registers a CPF key and an e-mail key and logs in: none of them in clear
    for name, pattern in {
        "CPF": r"(?<![\w.])\d{3}\.\d{3}\.\d{3}-\d{2}|(?<![0-9A-Za-z])\d{11}(?![0-9A-Za-z])",
        "e-mail": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        "phone": r"\+55\s?\d",
    }.items():
        assert not re.search(pattern, output), f"a {name} in clear"
    for line in result.stderr.splitlines():
        if line.strip():
            json.loads(line)  # every log line is JSON


# -- tracing (opt-in) ---------------------------------------------------------------------


def test_tracing_is_off_by_default_and_on_with_the_setting() -> None:
    from finbank_http.observability.tracing import tracing_enabled

    assert not tracing_enabled({})
    assert tracing_enabled({"FINBANK_TRACING": "otel"})


def test_with_tracing_on_a_request_becomes_a_span_and_its_logs_carry_the_trace_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from litestar import get
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from finbank_http.observability import ObservabilityPlugin

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    @get("/v1/ping", sync_to_thread=False)
    def ping() -> str:
        structlog.get_logger("finbank.test").info("pinged")
        return "pong"

    app = Litestar([ping], plugins=[ObservabilityPlugin(tracing=True, tracer_provider=provider)])
    configure_logging(LogConfig(level="INFO", json=True))
    try:
        with TestClient(app) as test_client:
            assert test_client.get("/v1/ping").text == "pong"
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        reset_logging()
    spans = exporter.get_finished_spans()
    assert any("/v1/ping" in span.name for span in spans), [s.name for s in spans]
    server_span = next(s for s in spans if s.parent is None)
    pinged = next(line for line in lines if line["event"] == "pinged")
    assert pinged["trace_id"] == f"{server_span.context.trace_id:032x}"
