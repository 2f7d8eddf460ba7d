"""RFC 9457 problem details: the one place where domain errors become HTTP.

The ``type`` of a problem is a stable URN built from the error's ``code``
(``urn:finbank:problem:insufficient_funds``), so clients switch on it without
parsing prose. Unexpected errors become a bare 500 problem; their details are
logged server-side only, never sent.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from finbank_core.shared.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
    ServiceUnavailable,
    TooManyRequests,
)
from finbank_core.shared.idempotency import RequestInProgress

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("finbank.http")


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = None
    errors: list[dict[str, Any]] | None = None


# Order matters: the most specific family first.
_STATUS_BY_FAMILY: tuple[tuple[type[DomainError], int], ...] = (
    (IdempotencyKeyReused, HTTP_422_UNPROCESSABLE_ENTITY),
    (InvalidInput, HTTP_400_BAD_REQUEST),
    (AuthenticationFailed, HTTP_401_UNAUTHORIZED),
    (PermissionDenied, HTTP_403_FORBIDDEN),
    (NotFound, HTTP_404_NOT_FOUND),
    (Conflict, HTTP_409_CONFLICT),
    (RuleViolation, HTTP_422_UNPROCESSABLE_ENTITY),
    (TooManyRequests, HTTP_429_TOO_MANY_REQUESTS),
    (ServiceUnavailable, HTTP_503_SERVICE_UNAVAILABLE),
)


def status_for(error: DomainError) -> int:
    for family, status in _STATUS_BY_FAMILY:
        if isinstance(error, family):
            return status
    return HTTP_422_UNPROCESSABLE_ENTITY


def problem_type(code: str) -> str:
    return f"urn:finbank:problem:{code}"


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[Problem]:
    return Response(
        content=problem, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    assert isinstance(exc, DomainError)
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == HTTP_401_UNAUTHORIZED else None
    if status == HTTP_503_SERVICE_UNAVAILABLE:
        headers = {"Retry-After": "1"}
    if isinstance(exc, RequestInProgress):  # 409 while the first request is in flight
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    return problem_response(
        Problem(
            type=problem_type(exc.code),
            title=exc.title,
            status=status,
            detail=exc.message,
            instance=request.url.path,
            code=exc.code,
        ),
        headers,
    )


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    assert isinstance(exc, HTTPException)
    code = "invalid_input" if isinstance(exc, ValidationException) else f"http_{exc.status_code}"
    if isinstance(exc, NotAuthorizedException):
        code = "authentication_required"
    errors = exc.extra if isinstance(exc.extra, list) else None
    headers = dict(exc.headers or {})
    if exc.status_code == HTTP_503_SERVICE_UNAVAILABLE:  # every 503 says when to come back
        headers.setdefault("Retry-After", "1")
    return problem_response(
        Problem(
            type=problem_type(code),
            title=_TITLES.get(exc.status_code, "HTTP error"),
            status=exc.status_code,
            detail=exc.detail,
            instance=request.url.path,
            code=code,
            errors=[e for e in errors if isinstance(e, dict)] if errors else None,
        ),
        headers or None,
    )


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # Log the class only: messages of unexpected errors may carry request data.
    logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem_response(
        Problem(
            type=problem_type("internal_error"),
            title="Internal server error",
            status=HTTP_500_INTERNAL_SERVER_ERROR,
            instance=request.url.path,
            code="internal_error",
        )
    )


_TITLES = {
    HTTP_400_BAD_REQUEST: "Invalid request",
    HTTP_401_UNAUTHORIZED: "Authentication required",
    HTTP_403_FORBIDDEN: "Forbidden",
    HTTP_404_NOT_FOUND: "Not found",
    405: "Method not allowed",
    HTTP_409_CONFLICT: "Conflict",
    HTTP_422_UNPROCESSABLE_ENTITY: "Unprocessable request",
    HTTP_429_TOO_MANY_REQUESTS: "Too many requests",
    HTTP_503_SERVICE_UNAVAILABLE: "Service unavailable",
}

EXCEPTION_HANDLERS = {
    DomainError: domain_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,
}


def in_progress_problem() -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the 409 an idempotent route gives while its first request runs."""
    return {
        HTTP_409_CONFLICT: ResponseSpec(
            data_container=Problem,
            description=(
                "Conflict. `idempotency_request_in_progress`: a request with the same "
                "`Idempotency-Key` is still being processed; retry after the `Retry-After` "
                "header's seconds to get its answer. Other codes: the request clashes with "
                "the current state."
            ),
            media_type=PROBLEM_MEDIA_TYPE,
        )
    }


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the problem responses a route can give."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_TITLES.get(status, "Error"),
            media_type=PROBLEM_MEDIA_TYPE,
        )
        for status in statuses
    }
