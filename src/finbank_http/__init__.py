"""The HTTP delivery mechanism: a Litestar app over the container's use cases."""

from finbank_http.app import create_app

__all__ = ["create_app"]
