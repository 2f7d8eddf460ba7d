"""The OpenAPI document as the contract, and Swagger UI served from a package.

Litestar generates the document from the routes; :func:`finish_document`
then states what Litestar cannot infer from them, the same way on every
operation:

- request bodies refuse unknown fields: their schemas say
  ``additionalProperties: false`` (every ``forbid_unknown_fields`` struct);
- every 4xx/5xx response, and a ``default`` one, is an
  ``application/problem+json`` :class:`~finbank_http.problems.Problem` with a
  real example (Litestar's own 400 schema, with an untyped ``extra``, never
  appears); ``Problem.code`` is the enum of our stable codes;
- a constraint written beside ``oneOf`` (a nullable field's ``maxLength``)
  moves into the branches, where validators and generators read it;
- the ``Idempotent-Replayed`` header is declared on the success responses of
  every operation that takes an ``Idempotency-Key``; images are ``format: binary``.

The rule for routes (docs/api.md, enforced by tests/e2e/test_http_openapi.py):
every route declares an explicit, short ``operation_id`` in lowerCamelCase,
verb then noun (``listPixPayments``), and its error statuses with
:func:`finbank_http.problems.problems`.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

from finbank_http.problems import PROBLEM_MEDIA_TYPE, stable_codes

OPERATION_ID = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)+$")
STATIC_PATH = "/schema/static"
_CONSTRAINTS = (
    "maxLength",
    "minLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "maxItems",
    "minItems",
)
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

#: an example problem per status: what a client really gets
PROBLEM_EXAMPLES: dict[str, dict[str, Any]] = {
    "400": {
        "type": "urn:finbank:problem:invalid_input",
        "title": "Invalid request",
        "status": 400,
        "detail": "Validation failed for POST /v1/transfers",
        "instance": "/v1/transfers",
        "code": "invalid_input",
        "field": "amount",
        "errors": [
            {
                "message": "Expected `str` matching regex '^[0-9]{1,10}\\\\.[0-9]{2}$(?!\\\\n)'",
                "key": "amount",
                "source": "body",
            }
        ],
    },
    "401": {
        "type": "urn:finbank:problem:invalid_token",
        "title": "The token is invalid, expired or revoked",
        "status": 401,
        "detail": "a bearer token is required",
        "instance": "/v1/accounts",
        "code": "invalid_token",
    },
    "403": {
        "type": "urn:finbank:problem:permission_denied",
        "title": "Permission denied",
        "status": 403,
        "detail": "Permission denied",
        "instance": "/v1/auth/signup",
        "code": "permission_denied",
    },
    "404": {
        "type": "urn:finbank:problem:account_not_found",
        "title": "Account not found",
        "status": 404,
        "detail": "Account not found",
        "instance": "/v1/accounts/0190d5a4-7c3e-7b1a-9c2d-3e4f5a6b7c8d",
        "code": "account_not_found",
    },
    "409": {
        "type": "urn:finbank:problem:idempotency_request_in_progress",
        "title": "A request with this idempotency key is still being processed",
        "status": 409,
        "detail": "retry in 1 s",
        "instance": "/v1/pix/payments",
        "code": "idempotency_request_in_progress",
        "retry_after_seconds": 1,
    },
    "413": {
        "type": "urn:finbank:problem:request_too_large",
        "title": "Request body too large",
        "status": 413,
        "detail": "Request Entity Too Large",
        "instance": "/v1/transfers",
        "code": "request_too_large",
    },
    "415": {
        "type": "urn:finbank:problem:unsupported_media_type",
        "title": "Unsupported media type",
        "status": 415,
        "detail": "the body must be JSON: send Content-Type: application/json",
        "instance": "/v1/transfers",
        "code": "unsupported_media_type",
    },
    "422": {
        "type": "urn:finbank:problem:insufficient_funds",
        "title": "Insufficient funds",
        "status": 422,
        "detail": "Insufficient funds",
        "instance": "/v1/transfers",
        "code": "insufficient_funds",
    },
    "429": {
        "type": "urn:finbank:problem:account_locked",
        "title": "Account temporarily locked",
        "status": 429,
        "detail": "too many failed attempts; try again later",
        "instance": "/v1/auth/login",
        "code": "account_locked",
        "retry_after_seconds": 1800,
    },
    "500": {
        "type": "urn:finbank:problem:internal_error",
        "title": "Internal server error",
        "status": 500,
        "instance": "/v1/transfers",
        "code": "internal_error",
    },
    "503": {
        "type": "urn:finbank:problem:service_unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "the ledger is unavailable",
        "instance": "/v1/transfers",
        "code": "service_unavailable",
    },
}
_STATUS_TEXT = {
    "400": "Invalid request: `field` and `errors` name the input at fault",
    "401": "Authentication required: no valid bearer token (or wrong credentials)",
    "403": "Forbidden",
    "404": "Not found (for this caller)",
    "409": "Conflict with the current state",
    "413": "Request body too large",
    "415": "The body must be `application/json`",
    "422": "A business rule refuses the request",
    "429": "Too many requests: retry after `Retry-After` seconds",
    "500": "Internal server error",
    "503": "A dependency is unavailable: retry after `Retry-After` seconds",
}


def finish_document(document: dict[str, Any]) -> dict[str, Any]:
    """Complete Litestar's document in place (module doc) and return it."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _close_request_bodies(schemas)
    _problem_schema(schemas)
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                _finish_operation(operation)
    for name in [n for n in schemas if n.startswith("ValidationException")]:
        del schemas[name]  # Litestar's default 400 body, now unreferenced
    _unique_titles(schemas)
    _name_integer_enums(schemas)
    _walk(document, _push_constraints_into_one_of)
    _walk(document, lambda node: _discriminate(node, schemas))
    return document


def _discriminate(schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Name the tag of a ``oneOf`` of tagged structs (``LoginOut``'s ``outcome``)."""
    branches = schema.get("oneOf")
    if not isinstance(branches, list) or "discriminator" in schema or len(branches) < 2:
        return
    refs = [b.get("$ref", "") for b in branches if isinstance(b, dict)]
    if len(refs) != len(branches) or not all(refs):
        return
    targets = [schemas.get(ref.rsplit("/", 1)[-1], {}) for ref in refs]
    for name in targets[0].get("properties", {}):
        values = [t.get("properties", {}).get(name, {}).get("const") for t in targets]
        tagged = all(isinstance(v, str) for v in values) and len(set(values)) == len(values)
        if tagged and all(name in t.get("required", []) for t in targets):
            schema["discriminator"] = {
                "propertyName": name,
                "mapping": dict(zip(values, refs, strict=True)),
            }
            return


def _name_integer_enums(schemas: dict[str, Any]) -> None:
    """``x-enum-varnames`` for integer enums (``TransferCode``): generated clients then say
    ``TransferCode.DEPOSIT``, not ``VALUE_1``."""
    by_name: dict[str, list[type[enum.IntEnum]]] = {}
    for int_enum in enum.IntEnum.__subclasses__():
        by_name.setdefault(int_enum.__name__, []).append(int_enum)
    for name, schema in schemas.items():
        values = schema.get("enum")
        if schema.get("type") != "integer" or not isinstance(values, list):
            continue
        for candidate in by_name.get(name.rsplit("_", 1)[-1], []):
            if sorted(member.value for member in candidate) == sorted(values):
                schema["x-enum-varnames"] = [candidate(value).name for value in values]


def _unique_titles(schemas: dict[str, Any]) -> None:
    """Two types of one name in different modules (Litestar names their components
    ``module_Name``) get titles as distinct as their component names: generated
    clients name classes after titles, and two ``ChargeStatus`` enums would clash."""
    titles: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        titles.setdefault(str(schema.get("title", name)), []).append(name)
    for names in titles.values():
        if len(names) > 1:
            for name in names:
                schemas[name]["title"] = "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def _close_request_bodies(schemas: dict[str, Any]) -> None:
    closed = {
        struct.__name__
        for struct in _all_structs()
        if struct.__struct_config__.forbid_unknown_fields
        and struct.__module__.startswith("finbank_http")
    }
    for name, schema in schemas.items():
        if name.split("_")[-1] in closed and schema.get("type") == "object":
            schema["additionalProperties"] = False


def _all_structs() -> list[type[msgspec.Struct]]:
    found: list[type[msgspec.Struct]] = []
    pending = list(msgspec.Struct.__subclasses__())
    while pending:
        struct = pending.pop()
        found.append(struct)
        pending.extend(struct.__subclasses__())
    return found


def _problem_schema(schemas: dict[str, Any]) -> None:
    problem = schemas.get("Problem")
    if problem is None:
        return
    properties = problem.setdefault("properties", {})
    properties["code"] = {
        "type": "string",
        "enum": stable_codes(),
        "description": "the stable error code (`type` is `urn:finbank:problem:<code>`)",
    }
    properties["type"] = {
        "type": "string",
        "pattern": "^urn:finbank:problem:[a-z0-9_]+$",
        "examples": ["urn:finbank:problem:insufficient_funds"],
    }
    properties["status"] = {"type": "integer", "minimum": 400, "maximum": 599}
    problem["examples"] = [PROBLEM_EXAMPLES["422"]]


def _problem_content(status: str) -> dict[str, Any]:
    example = PROBLEM_EXAMPLES.get(status, PROBLEM_EXAMPLES["500"])
    return {PROBLEM_MEDIA_TYPE: {"schema": dict(_PROBLEM_REF), "example": example}}


#: the ``Location`` headers routes send, by operation id and status
LOCATION_HEADERS: dict[str, dict[str, str]] = {
    "simulateIncomingPix": {"202": "where the payment appears once credited"},
}


def _finish_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, description in LOCATION_HEADERS.get(operation.get("operationId", ""), {}).items():
        if status in responses:
            responses[status].setdefault("headers", {})["Location"] = {
                "description": description,
                "schema": {"type": "string"},
                "required": True,
            }
    takes_input = bool(operation.get("parameters")) or "requestBody" in operation
    if takes_input:
        responses.setdefault("400", {})
    if operation.get("security"):
        responses.setdefault("401", {})
    if operation.get("requestBody"):
        responses.setdefault("413", {})
        responses.setdefault("415", {})
    for status, response in list(responses.items()):
        if status == "default" or status.startswith(("4", "5")):
            response["description"] = _describe(status, response.get("description"))
            response["content"] = _problem_content(status)
    responses["default"] = {
        "description": "Any other error, as a problem document",
        "content": _problem_content("500"),
    }
    takes_key = any(
        p.get("in") == "header" and p.get("name", "").lower() == "idempotency-key"
        for p in operation.get("parameters", [])
    )
    for status, response in responses.items():
        if status.startswith("2"):
            for media_type, content in response.get("content", {}).items():
                if media_type.startswith("image/"):
                    content["schema"] = {"type": "string", "format": "binary"}
            if takes_key:
                response.setdefault("headers", {})["Idempotent-Replayed"] = {
                    "description": "`true` when this answer replays the first request's",
                    "schema": {"type": "string", "enum": ["true"]},
                    "required": False,
                }


def _describe(status: str, current: str | None) -> str:
    """A route's own description of an error status, or the generic one."""
    generic = {"Bad request syntax or unsupported method", "Error", "", None}
    generic |= {"Invalid request", "Authentication required", "Forbidden", "Not found"}
    generic |= {"Conflict", "Unprocessable request", "Too many requests", "Service unavailable"}
    if current in generic:
        return _STATUS_TEXT.get(status, "Error")
    return str(current)


def _walk(node: Any, visit: Any) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def _push_constraints_into_one_of(schema: dict[str, Any]) -> None:
    branches = schema.get("oneOf")
    if not isinstance(branches, list):
        return
    moved = {key: schema.pop(key) for key in _CONSTRAINTS if key in schema}
    if not moved:
        return
    for branch in branches:
        if isinstance(branch, dict) and branch.get("type") not in (None, "null"):
            for key, value in moved.items():
                branch.setdefault(key, value)


def install(app: Litestar) -> None:
    """Make ``app`` serve the finished document (JSON, YAML and Swagger UI alike).

    Litestar builds the document once and keeps it; it is built here, when the
    app is created, and finished in place, so a route that cannot be
    documented fails at start, not on the first request for the document.
    """
    finish_document(app.plugins.get(OpenAPIPlugin).provide_openapi_schema())


def openapi_document(app: Litestar) -> dict[str, Any]:
    """The finished OpenAPI document ``app`` serves at ``/schema/openapi.json``, as JSON data."""
    document = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(document))
    return decoded


# -- Swagger UI from the swagger-ui-bundle-v2 package (no CDN) -----------------------------


def swagger_ui_directory() -> Path:
    """Where the installed package keeps Swagger UI's built files."""
    import swagger_ui_bundle  # type: ignore[import-untyped]  # swagger-ui-bundle-v2

    return Path(swagger_ui_bundle.swagger_ui_path)


def swagger_ui_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at ``/schema/swagger`` (and ``/schema``) with every asset served by us."""
    return SwaggerRenderPlugin(
        js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
        css_url=f"{STATIC_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{STATIC_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{STATIC_PATH}/favicon-32x32.png'>",
    )


def swagger_ui_assets() -> Router:
    """The route serving Swagger UI's files from the package (out of the document)."""
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[swagger_ui_directory()],
        include_in_schema=False,
        name="swagger_ui_assets",
    )
