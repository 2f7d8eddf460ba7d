"""Every asyncpg error the PostgreSQL adapters let out passes through here.

:func:`translated` turns driver errors into core errors: connection trouble
and server shutdowns into ``ServiceUnavailable``, unique violations into the
conflict the caller names per constraint (``DuplicateAccount``,
``UsernameTaken``...), bad argument values into ``InvalidInput``, a schema
that was never migrated into ``ServiceUnavailable`` with a hint. Whatever is
not listed here is a bug and propagates unchanged.

A lost connection (the server restarted, ``pg_terminate_backend``, a network
cut) shows up under many names depending on what the driver was doing when
it noticed: SQLSTATE class 08 (``ConnectionDoesNotExistError``...), 57P0x
(``AdminShutdownError``...), ``OSError``/``ConnectionResetError`` from the
socket, ``InterfaceError`` ("the underlying connection is closed", "pool is
closed"), even ``InternalClientError`` ("cannot switch to state N; another
operation is in progress": the protocol was cut half-way through a
message). All of them are ``ServiceUnavailable``. Other ``InterfaceError``
and ``InternalClientError`` messages (a connection used after its release,
two operations at once on one connection, a missing codec) are our bugs
and stay as they are.

:func:`with_retries` re-runs an operation that failed on a serialization
failure (SQLSTATE 40001) or a deadlock (40P01): bounded attempts, full
jitter backoff. Every operation it wraps is one transaction, so a failed
attempt left nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import asyncpg.exceptions as pg

from finbank_core.shared.errors import Conflict, DomainError, InvalidInput, ServiceUnavailable

T = TypeVar("T")

#: SQLSTATEs after which the same transaction, run again, may well succeed
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

_UNAVAILABLE = (
    OSError,  # refused, reset, unreachable (ConnectionError is a subclass)
    TimeoutError,
    pg.PostgresConnectionError,  # class 08, incl. ConnectionDoesNotExistError
    pg.OperatorInterventionError,  # class 57: admin shutdown, cannot connect now, cancel
    pg.InsufficientResourcesError,  # class 53: too many connections, disk full
    pg.InvalidCatalogNameError,  # the database does not exist
)
_NOT_MIGRATED = (pg.UndefinedTableError, pg.UndefinedFunctionError, pg.InvalidSchemaNameError)
#: what ``InterfaceError``/``InternalClientError`` say when the connection, not our code, failed
_LOST_CONNECTION_MESSAGES = (
    "connection is closed",  # "cannot perform operation: connection is closed"
    "connection was closed",
    "underlying connection is closed",  # "cannot call Transaction.__aexit__(): ..."
    "another operation is cancelling",  # a timed-out query being cancelled
    "cannot switch to state",  # the protocol cut half-way: InternalClientError
    "pool is closing",
    "pool is closed",
)

UniqueViolationMap = Mapping[str, Callable[[], DomainError]]


class RetriesExhausted(ServiceUnavailable):
    """The database kept aborting the transaction on conflicts; nothing was applied."""

    code = "retries_exhausted"
    title = "The database is too contended right now"


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and exc.sqlstate in RETRYABLE_SQLSTATES


def is_lost_connection(exc: BaseException) -> bool:
    """An ``InterfaceError``/``InternalClientError`` that says the connection went away."""
    if not isinstance(exc, asyncpg.InterfaceError | pg.InternalClientError):
        return False
    if isinstance(exc, pg.OutdatedSchemaCacheError):
        return False
    message = str(exc)
    return any(marker in message for marker in _LOST_CONNECTION_MESSAGES)


def translate_error(
    exc: BaseException, on_unique: UniqueViolationMap | None = None
) -> BaseException:
    """The core error for a driver error, or ``exc`` itself when it is not a driver error."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, pg.UniqueViolationError):
        factory = (on_unique or {}).get(exc.constraint_name or "")
        return factory() if factory else Conflict("the record already exists")
    if isinstance(exc, _NOT_MIGRATED):
        return ServiceUnavailable(
            "the database schema is missing or outdated: run `finbank db migrate`"
        )
    if isinstance(exc, _UNAVAILABLE):
        return ServiceUnavailable("the database is unavailable")
    if is_lost_connection(exc):
        return ServiceUnavailable("the database connection was lost")
    if isinstance(exc, pg.DataError):  # also raised client-side for out-of-range arguments
        # the driver's text stays in the chained cause (server logs), never in the message:
        # it names encodings, types and values ("value out of int64 range", "0x00")
        return InvalidInput("a value is out of the range the database accepts")
    if is_retryable(exc):
        return RetriesExhausted()
    return exc


@contextlib.contextmanager
def translated(on_unique: UniqueViolationMap | None = None) -> Iterator[None]:
    """Re-raise driver errors raised inside the block as core errors."""
    try:
        yield
    except Exception as exc:
        mapped = translate_error(exc, on_unique)
        if mapped is exc:
            raise
        raise mapped from exc


_random = secrets.SystemRandom()


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with full-jitter exponential backoff."""

    attempts: int = 5
    base_delay_seconds: float = 0.002
    max_delay_seconds: float = 0.1

    def delay(self, attempt: int) -> float:
        cap = min(self.max_delay_seconds, self.base_delay_seconds * 2**attempt)
        return _random.uniform(0, cap)


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``operation``; run it again after 40001/40P01, at most ``policy.attempts`` times.

    The last retryable error propagates (``translated`` turns it into
    :class:`RetriesExhausted`); any other error propagates at once.
    """
    attempt = 1
    while True:
        try:
            return await operation()
        except asyncpg.PostgresError as exc:
            if not is_retryable(exc) or attempt >= policy.attempts:
                raise
            if on_retry is not None:
                on_retry(exc)
        await asyncio.sleep(policy.delay(attempt))
        attempt += 1
