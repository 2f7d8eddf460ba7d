"""RFC 9457 problem details: the one place where domain errors become HTTP.

The ``type`` of a problem is a stable URN built from the error's ``code``
(``urn:finbank:problem:insufficient_funds``), so clients switch on it without
parsing prose. Unexpected errors become a bare 500 problem; their details are
logged server-side only, never sent.
"""

from __future__ import annotations

import enum
import logging
import re
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


class FieldError(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One invalid part of the request: ``key`` names it, ``source`` says where it was."""

    message: str
    key: str | None = None
    source: str | None = None


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem document; ``code`` is stable (clients switch on it).

    Besides the standard members, the error's own details travel as extension
    members when it has them: ``field`` (the input at fault), ``attempts_left``
    (a wrong MFA code), ``retry_after_seconds`` (also the ``Retry-After``
    header), ``limit`` (the PIX limit that refused a payment), ``reason``
    (an ISO reason), ``state``, ``purpose`` and ``deadline`` (which MED deadline
    passed).
    """

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str
    errors: list[FieldError] | None = None
    field: str | None = None
    attempts_left: int | None = None
    retry_after_seconds: int | None = None
    limit: str | None = None
    reason: str | None = None
    state: str | None = None
    purpose: str | None = None
    deadline: str | None = None


#: the error details copied into a problem, with the type each must have
DETAIL_MEMBERS: dict[str, type] = {
    "field": str,
    "attempts_left": int,
    "retry_after_seconds": int,
    "limit": str,
    "reason": str,
    "state": str,
    "purpose": str,
    "deadline": str,
}


def problem_details(details: dict[str, Any]) -> dict[str, Any]:
    """The details a client may see: the documented members, of their documented types."""
    shown: dict[str, Any] = {}
    for name, kind in DETAIL_MEMBERS.items():
        value = details.get(name)
        if isinstance(value, kind) and not isinstance(value, bool):
            shown[name] = value
        elif kind is str and isinstance(value, enum.Enum) and isinstance(value.value, str):
            shown[name] = value.value
    return shown


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
    details = problem_details(exc.details)
    if isinstance(exc, RequestInProgress):  # 409 while the first request is in flight
        details["retry_after_seconds"] = exc.retry_after_seconds
    headers: dict[str, str] = {}
    if status == HTTP_401_UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after_seconds" in details:
        headers["Retry-After"] = str(max(1, details["retry_after_seconds"]))
    elif status in (HTTP_429_TOO_MANY_REQUESTS, HTTP_503_SERVICE_UNAVAILABLE):
        headers["Retry-After"] = "1"  # every 429 and 503 says when to come back
    return problem_response(
        Problem(
            type=problem_type(exc.code),
            title=exc.title,
            status=status,
            detail=exc.message,
            instance=request.url.path,
            code=exc.code,
            **details,
        ),
        headers or None,
    )


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = HTTP_CODES.get(status, f"http_{status}")
    if isinstance(exc, ValidationException) or status == HTTP_400_BAD_REQUEST:
        code = "invalid_input"
    if isinstance(exc, NotAuthorizedException):
        code = "authentication_required"
    headers = dict(exc.headers or {})
    if status in (HTTP_429_TOO_MANY_REQUESTS, HTTP_503_SERVICE_UNAVAILABLE):
        # every 429 and 503 says when to come back: the rate limiter's reset, or 1 s
        reset = headers.get("RateLimit-Reset", "")
        headers.setdefault("Retry-After", reset if reset.isdigit() and reset != "0" else "1")
    errors = field_errors(exc.extra)
    return problem_response(
        Problem(
            type=problem_type(code),
            title=_TITLES.get(status, "HTTP error"),
            status=status,
            detail=safe_detail(exc),
            instance=request.url.path,
            code=code,
            errors=errors or None,
            field=errors[0].key if len(errors) == 1 and errors[0].key else None,
        ),
        headers or None,
    )


def field_errors(extra: Any) -> list[FieldError]:
    """Litestar's validation errors (``extra``) as :class:`FieldError` s."""
    found: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            message = str(item.get("message", "invalid value"))[:300]
            key = str(item.get("key") or "") or None
            if key == "data":  # Litestar's name for the body: name the field when known
                unknown = _UNKNOWN_FIELD.search(message)
                key = unknown.group(1) if unknown else "body"
            source = item.get("source")
            found.append(
                FieldError(message=message, key=key, source=str(source) if source else None)
            )
    return found


_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]{1,64})`")


def safe_detail(exc: HTTPException) -> str:
    """The detail of an HTTP exception; a server error's own text is never sent."""
    if exc.status_code >= HTTP_500_INTERNAL_SERVER_ERROR:
        return _TITLES.get(exc.status_code, "Server error")
    return exc.detail


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
    413: "Request body too large",
    415: "Unsupported media type",
    HTTP_422_UNPROCESSABLE_ENTITY: "Unprocessable request",
    HTTP_429_TOO_MANY_REQUESTS: "Too many requests",
    HTTP_500_INTERNAL_SERVER_ERROR: "Internal server error",
    HTTP_503_SERVICE_UNAVAILABLE: "Service unavailable",
}

#: the stable codes of problems raised by the HTTP layer itself (not by a domain error)
HTTP_CODES: dict[int, str] = {
    HTTP_404_NOT_FOUND: "route_not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    HTTP_429_TOO_MANY_REQUESTS: "rate_limited",
    HTTP_500_INTERNAL_SERVER_ERROR: "internal_error",
    HTTP_503_SERVICE_UNAVAILABLE: "service_unavailable",
}
HTTP_LAYER_CODES = ("invalid_input", "authentication_required", *HTTP_CODES.values())


def stable_codes() -> list[str]:
    """Every ``code`` a problem can carry: the domain errors' and the HTTP layer's, sorted."""
    codes = set(HTTP_LAYER_CODES)
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        error = pending.pop()
        codes.add(error.code)
        pending.extend(error.__subclasses__())
    return sorted(codes)


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
