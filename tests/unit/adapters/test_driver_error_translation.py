"""Every way of losing PostgreSQL or Redis becomes ``ServiceUnavailable``; our bugs stay bugs.

The driver errors are built as the drivers raise them (same classes, same
messages: the asyncpg ones were seen while ``pg_terminate_backend`` ran under
load, see ``tests/e2e/test_connection_loss.py``).
"""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions as pg
import pytest
import redis.exceptions as redis_exc

from finbank_adapters.postgres.errors import translate_error, translated
from finbank_adapters.redis.errors import redis_errors
from finbank_core.shared.errors import InvalidInput, ServiceUnavailable

LOST_CONNECTION: list[BaseException] = [
    pg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    asyncpg.InterfaceError(
        "cannot call Transaction.__aexit__(): the underlying connection is closed"
    ),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    asyncpg.InterfaceError("cannot perform operation: another operation is cancelling"),
    asyncpg.InterfaceError("pool is closing"),
    asyncpg.InterfaceError("pool is closed"),
    pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    pg.ConnectionFailureError("connection failure"),
    pg.ClientCannotConnectError("cannot connect"),
    pg.ProtocolViolationError("protocol violation"),
    pg.AdminShutdownError("terminating connection due to administrator command"),
    pg.CrashShutdownError("crash shutdown"),
    pg.CannotConnectNowError("the database system is starting up"),
    pg.IdleSessionTimeoutError("terminating connection due to idle-session timeout"),
    pg.TooManyConnectionsError("sorry, too many clients already"),
    ConnectionResetError(104, "Connection reset by peer"),
    ConnectionRefusedError(111, "Connection refused"),
    BrokenPipeError(32, "Broken pipe"),
    OSError(113, "No route to host"),
    TimeoutError(),
]

BUGS: list[BaseException] = [
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.InterfaceError(
        "cannot call Connection.fetch(): connection has been released back to the pool"
    ),
    pg.InternalClientError("no binary format encoder for type foo (OID 1)"),
    pg.OutdatedSchemaCacheError("cached statement plan is invalid"),
    pg.SyntaxOrAccessError("syntax error"),
    pg.InternalServerError("XX000"),
    ValueError("not a driver error"),
]


@pytest.mark.parametrize("error", LOST_CONNECTION, ids=lambda e: type(e).__name__)
def test_a_lost_postgres_connection_is_service_unavailable(error: BaseException) -> None:
    assert isinstance(translate_error(error), ServiceUnavailable)
    with pytest.raises(ServiceUnavailable) as raised, translated():
        raise error
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("error", BUGS, ids=lambda e: type(e).__name__)
def test_a_bug_is_not_disguised_as_an_outage(error: BaseException) -> None:
    assert translate_error(error) is error
    with pytest.raises(type(error)), translated():
        raise error


REDIS_LOST: list[BaseException] = [
    redis_exc.ConnectionError("Connection closed by server."),
    redis_exc.TimeoutError("Timeout reading from socket"),
    redis_exc.BusyLoadingError("Redis is loading the dataset in memory"),
    redis_exc.ReadOnlyError("You can't write against a read only replica."),
    redis_exc.ClusterDownError("CLUSTERDOWN"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
]


@pytest.mark.parametrize("error", REDIS_LOST, ids=lambda e: type(e).__name__)
def test_a_lost_redis_connection_is_service_unavailable(error: BaseException) -> None:
    with pytest.raises(ServiceUnavailable), redis_errors("test"):
        raise error


@pytest.mark.parametrize(
    "error",
    [
        pg.DataError(
            "invalid input for query argument $1: 9223372036854775808 (value out of int64 range)"
        ),
        pg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
    ],
)
def test_a_data_error_is_invalid_input_without_the_drivers_text(error: Exception) -> None:
    translated_error = translate_error(error)
    assert isinstance(translated_error, InvalidInput)
    assert str(translated_error) == "a value is out of the range the database accepts"
    for driver_text in ("int64", "UTF8", "0x00", "$1"):
        assert driver_text not in str(translated_error)
