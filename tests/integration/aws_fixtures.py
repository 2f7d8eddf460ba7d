"""A session-scoped moto server on a free loopback port, with dummy credentials.

Import the fixtures into a test module (``from tests.integration.aws_fixtures
import aws_endpoint``); kept out of conftest.py on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import REQUIRE_SERVICES

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "sa-east-1",
}


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """URL of a moto server for this test session (AWS credentials are dummies)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # moto[server] is a dev dependency
        if REQUIRE_SERVICES:
            pytest.fail(f"moto server is not installed ({exc}) and FINBANK_REQUIRE_SERVICES=1")
        pytest.skip(f"moto server is not installed: {exc}")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in DUMMY_AWS_ENV.items():
            patch.setenv(key, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
