"""Third-party loggers that must never log below INFO.

botocore, aiobotocore and the Kafka client log whole requests and responses
at DEBUG: a Secrets Manager response body (``SecretString``: the database
DSN, the JWT secret), Cognito's answers (tokens, sessions). A process at
DEBUG (a Lambda with ``AWS_LAMBDA_LOG_LEVEL=DEBUG``, an embedder's
``basicConfig(level=DEBUG)``) would write those to its logs. The HTTP
service's logging setup and every secret fetch hold these loggers at INFO.
"""

from __future__ import annotations

import logging

#: third-party loggers never allowed below INFO (they log payloads at DEBUG)
QUIET_LOGGERS = ("botocore", "aiobotocore", "boto3", "s3transfer", "urllib3", "aiokafka", "asyncio")


def quiet_third_party_loggers(floor: int = logging.INFO) -> None:
    """Set every logger of :data:`QUIET_LOGGERS` to ``floor`` unless its own level is
    already higher: pinned on the logger itself, a root lowered later to DEBUG does
    not reach it."""
    for name in QUIET_LOGGERS:
        quiet = logging.getLogger(name)
        if quiet.level < floor:  # NOTSET (0) included: it would follow the root
            quiet.setLevel(floor)
