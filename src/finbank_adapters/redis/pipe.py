"""One pipelined Redis connection for the reads every request makes (the token denylist's MGET).

redis-py's asyncio client spends about 40 µs of CPU on one ``MGET`` on the
2-core benchmark machine (checking a connection out of its pool and back in,
its retry wrapper, event dispatch, a health check and a timeout context per
reply), more than asyncpg spends on a query. The token denylist is asked on
every authenticated request, so :class:`RedisPipe` sends those commands on a
connection of its own with many in flight at once: Redis answers a
connection's commands in the order it received them, so replies are matched
to callers first in, first out, parsed by hiredis in the protocol's callback.

Each command is written when it is sent, not gathered until the end of the
event loop's turn. Requests that arrive together reach the check one after
another, each after its own parsing and token decoding; written at once, the
first one's reply is on its way back while the next ones are still being
handled, so each request goes on to the bank sooner. The ledger's group
commit then more often keeps its two alternating halves (``docs/postgres.md``,
"Group commit"): in a trace of a local worker under ``benchmarks/http.py``'s
16 connections, groups of 8 went from 2% of its calls to 16%, and lone calls
from 55% to 35%. One write a turn (the first design) saved no CPU there
(server 0.263 against 0.261 ms a request), and writing at once served 1.09x
the transfers (each of 6 interleaved rounds between 1.01x and 1.11x).

It speaks to what ``redis.asyncio`` would: :func:`pipe_for` takes the host,
port or Unix socket, database, credentials and timeouts from the client's
connection pool, and returns ``None`` (callers keep using the client) for
anything else: TLS, a credential provider, RESP3, options it does not know.
Failures are redis-py's exceptions (``ConnectionError``, ``TimeoutError``,
``ResponseError``), so callers handle them as they handle the client's:

* a command not answered within the pool's ``socket_timeout`` aborts the
  connection and fails every command waiting on it (Redis answers in order:
  one late reply delays all those after it);
* a lost connection fails the commands waiting on it; the next command
  connects again (one connection attempt at a time, within
  ``socket_connect_timeout``);
* a caller cancelled while waiting leaves its reply to be read and dropped,
  so later replies still reach their own callers;
* a connection idle for longer than the pool's ``health_check_interval`` is
  sent a ``PING`` before the next command, and replaced if that fails, as
  redis-py does with its idle connections.

The connection is closed by :func:`close_pipe` (the container calls it before
closing the client), or when the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: connection options the pipe applies itself
_APPLIED = frozenset(
    {
        "host",
        "port",
        "path",
        "db",
        "username",
        "password",
        "client_name",
        "socket_timeout",
        "socket_connect_timeout",
        "health_check_interval",
    }
)
#: options that change nothing the pipe does (it retries nothing: a failure goes to the
#: caller at once; answers are read as bytes)
_IGNORED = frozenset(
    {
        "retry",
        "retry_on_timeout",
        "retry_on_error",
        "encoding",
        "encoding_errors",
        "decode_responses",
        "lib_name",
        "lib_version",
        "himport_registry",
        "maint_notifications_pool_handler",
        "maint_notifications_config",
        "orig_host_address",
        "orig_socket_timeout",
        "orig_socket_connect_timeout",
        "socket_keepalive",
        "socket_keepalive_options",
        "socket_read_size",
        "event_dispatcher",
        "driver_info",
        "legacy_responses",
    }
)

try:
    import hiredis
except ImportError:  # pragma: no cover - the redis extra brings it; without it, redis-py alone
    hiredis = None  # type: ignore[assignment]

_pipes: weakref.WeakKeyDictionary[Redis, RedisPipe] = weakref.WeakKeyDictionary()


def pipe_for(client: Redis) -> RedisPipe | None:
    """The pipe of ``client``'s server (one per client), or ``None`` if it cannot speak for it."""
    pipe = _pipes.get(client)
    if pipe is None:
        pipe = RedisPipe.for_client(client)
        if pipe is not None:
            _pipes[client] = pipe
    return pipe


async def close_pipe(client: Redis) -> None:
    """Close the pipe :func:`pipe_for` made for ``client``, if any (before closing the client)."""
    pipe = _pipes.pop(client, None)
    if pipe is not None:
        await pipe.aclose()


_PING = b"*1\r\n$4\r\nPING\r\n"


def _pack(args: tuple[str | bytes | int, ...]) -> bytes:
    # hiredis' stub types the argument as a tuple of one element; it takes any length
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]
    return packed


class _Connection(asyncio.Protocol):
    """One connection: the commands sent and not answered yet, oldest first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self.loop = loop
        self.timeout = timeout
        self.reader = hiredis.Reader()
        #: (the caller's future, when the command was sent)
        self.pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.closed = loop.create_future()
        #: when the last command was sent (the pipe checks a connection idle for long)
        self.last_sent = loop.time()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; both write and abort
        self.transport = cast(asyncio.Transport, transport)
        self.open = True

    def send(self, command: bytes) -> asyncio.Future[Any]:
        transport = self.transport
        if not self.open or transport is None:
            raise RedisConnectionError("the Redis connection is closed")
        future = self.loop.create_future()
        self.last_sent = sent = self.loop.time()
        self.pending.append((future, sent))
        transport.write(command)  # at once: see the module's docstring
        if self._timer is None and self.timeout is not None:
            self._timer = self.loop.call_at(sent + self.timeout, self._expire)
        return future

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        pending = self.pending
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                if not pending:
                    raise RedisConnectionError("Redis sent a reply nothing asked for")
                future = pending.popleft()[0]
                if future.done():  # its caller was cancelled; the reply is its own
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(ResponseError(str(reply)))
                else:
                    future.set_result(reply)
        except (hiredis.HiredisError, RedisError) as exc:
            self.fail(RedisConnectionError(f"Redis protocol error: {type(exc).__name__}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError("the Redis connection was lost"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _expire(self) -> None:
        self._timer = None
        if not self.pending or self.timeout is None:
            return
        sent = self.pending[0][1]
        if self.loop.time() >= sent + self.timeout:
            self.fail(RedisTimeoutError("Redis did not answer in time"))
        else:
            self._timer = self.loop.call_at(sent + self.timeout, self._expire)

    def fail(self, error: RedisError) -> None:
        """Stop using this connection: every waiting command fails with ``error``."""
        was_open, self.open = self.open, False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self.pending = self.pending, deque()
        for future, _ in pending:
            if not future.done():
                future.set_exception(error)
        if was_open and self.transport is not None:
            self.transport.abort()


class RedisPipe:
    """Commands to one Redis server on one connection, many in flight, answered in order."""

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 6379,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        client_name: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        health_check_interval: float = 0,
    ) -> None:
        self._host = host
        self._port = port
        self._path = path
        self._db = int(db)
        self._username = username
        self._password = password
        self._client_name = client_name
        self._timeout = timeout
        self._connect_timeout = connect_timeout if connect_timeout is not None else timeout
        self._health_interval = health_check_interval
        self._conn: _Connection | None = None
        self._connecting: asyncio.Lock | None = None
        self._connecting_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def for_client(cls, client: Redis) -> RedisPipe | None:
        """A pipe to ``client``'s server with its options; ``None`` for options it lacks."""
        if hiredis is None:
            return None
        pool = client.connection_pool
        kwargs: dict[str, Any] = dict(pool.connection_kwargs)
        if pool.connection_class not in (Connection, UnixDomainSocketConnection):
            return None  # TLS, or a connection class of someone's own
        for name, value in kwargs.items():
            if name in _APPLIED or name in _IGNORED:
                continue
            if name == "protocol" and value in (None, 2, "2"):
                continue
            if value is not None:
                return None  # e.g. a credential provider, RESP3
        if kwargs.get("decode_responses"):
            return None  # callers of the client expect text; keep to one behaviour
        return cls(
            host=kwargs.get("host", "localhost"),
            port=int(kwargs.get("port", 6379)),
            path=kwargs.get("path")
            if pool.connection_class is UnixDomainSocketConnection
            else None,
            db=int(kwargs.get("db", 0) or 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            client_name=kwargs.get("client_name"),
            timeout=kwargs.get("socket_timeout"),
            connect_timeout=kwargs.get("socket_connect_timeout"),
            health_check_interval=float(kwargs.get("health_check_interval") or 0),
        )

    async def execute(self, *args: str | bytes | int) -> Any:
        """Send one command and return its reply (bytes, ints, lists, ``None``)."""
        command = _pack(args)
        conn = self._conn
        loop = asyncio.get_running_loop()
        if conn is None or not conn.open or conn.loop is not loop:
            conn = await self._connect(loop)
        elif self._health_interval and loop.time() - conn.last_sent > self._health_interval:
            conn = await self._checked(conn, loop)
        return await conn.send(command)

    async def _checked(self, conn: _Connection, loop: asyncio.AbstractEventLoop) -> _Connection:
        """A connection idle for longer than ``health_check_interval``: a ``PING`` first, and a
        new connection if it fails (as redis-py checks its idle connections)."""
        try:
            await conn.send(_PING)
        except (RedisConnectionError, RedisTimeoutError):
            conn.fail(RedisConnectionError("the Redis connection failed its health check"))
            return await self._connect(loop)
        return conn

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        if self._connecting is None or self._connecting_loop is not loop:
            # a lock of this loop's (a pipe used from another loop starts over)
            self._conn = None
            self._connecting = asyncio.Lock()
            self._connecting_loop = loop
        async with self._connecting:
            conn = self._conn
            if conn is not None and conn.open:
                return conn  # another caller connected meanwhile
            conn = await self._open(loop)
            self._conn = conn
            return conn

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        def protocol() -> _Connection:
            return _Connection(loop, self._timeout)

        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._path is not None:
                    _, conn = await loop.create_unix_connection(protocol, self._path)
                else:
                    _, conn = await loop.create_connection(protocol, self._host, self._port)
        except TimeoutError:
            raise RedisTimeoutError("timed out connecting to Redis") from None
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {type(exc).__name__}") from None
        try:
            handshake: list[tuple[str | bytes | int, ...]] = []
            if self._password is not None:
                auth: tuple[str, ...] = (self._password,)
                if self._username:
                    auth = (self._username, self._password)
                handshake.append(("AUTH", *auth))
            if self._db:
                handshake.append(("SELECT", self._db))
            if self._client_name:
                handshake.append(("CLIENT", "SETNAME", self._client_name))
            for command in handshake:
                await conn.send(_pack(command))
        except BaseException:
            conn.fail(RedisConnectionError("the Redis handshake failed"))
            raise
        return conn

    async def aclose(self) -> None:
        """Close the connection; commands still waiting fail with ``ConnectionError``."""
        conn, self._conn = self._conn, None
        if conn is None or conn.transport is None:
            return
        conn.fail(RedisConnectionError("the Redis pipe was closed"))
        if conn.loop is asyncio.get_running_loop() and not conn.loop.is_closed():
            with contextlib.suppress(asyncio.CancelledError):
                await conn.closed
