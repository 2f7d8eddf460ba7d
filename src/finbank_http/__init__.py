"""The HTTP delivery mechanism: a Litestar app over the container's use cases."""

from finbank_adapters._extras import require_extra

require_extra("finbank_http", "http", ["litestar", "structlog", "prometheus_client", "segno"])

from finbank_http.app import create_app  # noqa: E402

__all__ = ["create_app"]
