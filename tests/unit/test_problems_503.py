"""Every 503 carries Retry-After: a core ``ServiceUnavailable`` and Litestar's own 503 alike."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.exceptions import ServiceUnavailableException
from litestar.testing import TestClient

from finbank_core.shared.errors import ServiceUnavailable
from finbank_http.problems import EXCEPTION_HANDLERS


@get("/core")
async def core_outage() -> None:
    raise ServiceUnavailable("the database connection was lost")


@get("/framework")
async def framework_outage() -> None:
    raise ServiceUnavailableException()


@get("/framework-with-header")
async def framework_outage_with_header() -> None:
    raise ServiceUnavailableException(headers={"Retry-After": "30"})


@pytest.mark.parametrize(
    ("path", "retry_after"), [("/core", "1"), ("/framework", "1"), ("/framework-with-header", "30")]
)
def test_a_503_problem_says_when_to_retry(path: str, retry_after: str) -> None:
    app = Litestar(
        [core_outage, framework_outage, framework_outage_with_header],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    with TestClient(app) as client:
        response = client.get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == retry_after
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 503
