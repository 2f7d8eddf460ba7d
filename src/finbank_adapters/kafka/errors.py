"""Every aiokafka error the Kafka adapters let out passes through here.

:func:`translated` turns driver errors into core errors: anything that means
"the bus did not take it" (connection refused, timeouts, no leader, the
producer closed, a broker-side failure, refused credentials) becomes
``ServiceUnavailable``, which callers may retry; a record too large for the
broker becomes ``InvalidInput`` (retrying cannot help). Errors that are not
Kafka's propagate unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiokafka import errors as kafka

from finbank_core.shared.errors import DomainError, InvalidInput, ServiceUnavailable

_TOO_LARGE = (kafka.MessageSizeTooLargeError, kafka.RecordTooLargeError)
_AUTH = (
    kafka.AuthenticationFailedError,
    kafka.SaslAuthenticationFailed,
    kafka.TopicAuthorizationFailedError,
    kafka.GroupAuthorizationFailedError,
    kafka.ClusterAuthorizationFailedError,
)


def translate_error(exc: BaseException) -> BaseException:
    """The core error for a Kafka error, or ``exc`` itself when it is not one."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, _TOO_LARGE):
        return InvalidInput("the event is too large for the message bus")
    if isinstance(exc, _AUTH):
        return ServiceUnavailable("the message bus refused our credentials")
    if isinstance(exc, kafka.KafkaError | TimeoutError | ConnectionError):
        return ServiceUnavailable(f"the message bus is unavailable ({type(exc).__name__})")
    return exc


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Re-raise Kafka errors raised inside the block as core errors."""
    try:
        yield
    except Exception as exc:
        mapped = translate_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc
