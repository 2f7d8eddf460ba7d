"""A JSON response encoded once, for the busiest routes (``POST /v1/transfers``, PIX payments).

A route handler returning :class:`JSONResponse` is a Litestar route like any
other (same routing, hooks, exception handlers and OpenAPI document: its
annotation stays ``Response[TransferOut]``); only the last step differs.
Litestar's ``Response.to_asgi_response`` merges header mappings, resolves
the serializer and builds an ``ASGIResponse`` that normalizes its headers
again; when the route adds nothing (no route-level headers, cookies,
background task, which is what these routes declare), this class encodes
the content as Litestar would (its ``encode_json`` with the serializer of the
app's type encoders) and hands over its headers already as bytes: the same
status, body and headers Litestar would send (tests compare them). Anything
the route adds takes Litestar's own path.
"""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Request, Response
from litestar.response.base import ASGIResponse
from litestar.serialization import encode_json, get_serializer
from litestar.utils.helpers import get_enum_string_value

T = TypeVar("T")

_CONTENT_TYPE = (b"content-type", b"application/json")


class _EncodedASGIResponse(ASGIResponse):
    """An ``ASGIResponse`` whose headers are given encoded (no cookies, no background)."""

    __slots__ = ()

    def __init__(self, body: bytes, status_code: int, headers: list[tuple[bytes, bytes]]) -> None:
        # what ASGIResponse.__init__ sets, for a JSON body with the status allowing one
        self.background = None
        self.body = body
        self.content_length = len(body)
        self.encoding = "utf-8"
        self.is_head_response = False
        self.status_code = status_code
        self._encoded_cookies = ()
        self.headers = headers  # type: ignore[assignment]

    def encode_headers(self) -> list[tuple[bytes, bytes]]:
        return self.headers  # type: ignore[return-value]


class JSONResponse(Response[T]):
    """``Response(content, status_code=..., headers=...)`` with JSON content (see the module)."""

    __slots__ = ()

    def __init__(
        self,
        content: T,
        *,
        background: Any = None,
        cookies: Any = None,
        encoding: str = "utf-8",
        headers: Any = None,
        media_type: Any = None,
        status_code: int | None = None,
        type_encoders: Any = None,
    ) -> None:
        if (
            background is not None
            or cookies is not None
            or media_type is not None
            or type_encoders is not None
            or (headers is not None and type(headers) is not dict)
        ):
            super().__init__(
                content,
                background=background,
                cookies=cookies,
                encoding=encoding,
                headers=headers,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
            return
        # what Response.__init__ sets for these arguments, without its isinstance checks
        # against typing.Mapping (slow: a generic alias)
        self.content = content
        self.background = None
        self.cookies = []
        self.encoding = encoding
        self.headers = dict(headers) if headers else {}
        self.media_type = None
        self.status_code = status_code
        self.response_type_encoders = {**(self.type_encoders or {})}

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: Any = None,
        cookies: Any = None,
        encoded_headers: Any = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: Any = None,
        status_code: int | None = None,
        type_encoders: Any = None,
    ) -> ASGIResponse:
        if (
            app is not None
            or background is not None
            or cookies
            or encoded_headers is not None
            or headers
            or is_head_response
            or self.background is not None
            or self.cookies
            or self.media_type is not None
            or self.encoding != "utf-8"
            or request.method == "HEAD"
            or (media_type and get_enum_string_value(media_type) != "application/json")
        ):
            return super().to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
        # the serializer Litestar's to_asgi_response would pick (the app's type encoders,
        # then the response's), and its encoder: the same bytes
        if type_encoders:
            type_encoders = {**type_encoders, **(self.response_type_encoders or {})}
        else:
            type_encoders = self.response_type_encoders
        body = encode_json(self.content, get_serializer(type_encoders))
        status = self.status_code or status_code or 200
        encoded = [
            (name.lower().encode("latin-1"), str(value).encode("latin-1"))
            for name, value in self.headers.items()
        ]
        names = {name for name, _ in encoded}
        if b"content-type" not in names:
            encoded.append(_CONTENT_TYPE)
        if b"content-length" not in names:
            encoded.append((b"content-length", str(len(body)).encode("latin-1")))
        return _EncodedASGIResponse(body, status, encoded)
