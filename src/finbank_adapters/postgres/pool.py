"""Creating the asyncpg pool the PostgreSQL adapters share.

The container opens it in the app lifespan (never at import) and closes it on
shutdown. asyncpg's default release resets every connection with one more
round trip (``RESET ALL``, ``UNLISTEN *``, advisory unlocks...); the adapters
here set no session state, listen to nothing and hold only
transaction-scoped advisory locks (the migration runner, which holds a
session lock, releases it itself), so release only rolls back a transaction
left open, e.g. by a cancelled task.

Every connection reads ``uuid`` columns as ``uuid.UUID`` itself, not asyncpg's
subclass of it (:func:`plain_uuids`), so that ids come back from PostgreSQL as
they come back from the in-memory adapters.

JIT compilation is off for these sessions (``jit=off``, overridable through
``server_settings``): every statement here is short OLTP work, and once a
table grows past the planner's ``jit_above_cost`` (the outbox with a backlog
of ~100k events) the compilation alone took 25 ms of a 35 ms relay claim.

The pool is :class:`Pool`, asyncpg's own with a shorter acquire and release
for the common case. asyncpg releases through ``asyncio.shield`` of a new
task (so that a cancellation cannot strand the connection), a timeout
context and our reset: about 35 µs of CPU per query on this 2-core machine,
more than ``SELECT 1`` itself, and an extra turn of the event loop. When the
connection is idle (not in a transaction, not cancelling a query, open, of
the pool's current generation, under its query budget) that release has
nothing to wait for, so :class:`Pool` does the same steps synchronously, and
nothing can interrupt them; in every other case it is asyncpg's release,
unchanged. Acquiring a live connection without a timeout skips four
coroutine frames the same way. The holder's "in use" future (what ``close()``
and the expiry await) is woken at release when something awaits it; when
nothing does, the short release leaves it pending and the holder's next short
acquire takes it again instead of a new one. These use asyncpg's private pool internals
(checked by ``tests/integration/test_postgres_pool.py``); should a version
change them, :func:`create_pool` falls back to asyncpg's pool as it is.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.exceptions import InvalidCachedStatementError, OutdatedSchemaCacheError
from asyncpg.pool import PoolConnectionHolder, PoolConnectionProxy

from finbank_adapters.postgres.errors import translated

_new_object = object.__new__

#: session settings of every pool, before the caller's own. The ledger's functions are
#: written for READ COMMITTED (each statement reads the latest committed rows, so a
#: transfer id stored while a call waited for the accounts' locks is seen after them):
#: a database or role whose default is another level does not change that.
DEFAULT_SERVER_SETTINGS: Mapping[str, str] = {
    "jit": "off",
    "default_transaction_isolation": "read committed",
}


_set_slot = object.__setattr__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown
_int_of_bytes = int.from_bytes


def _uuid_of_bytes(data: bytes) -> uuid.UUID:
    """A ``uuid`` value as ``uuid.UUID`` itself, what ``uuid.UUID(bytes=data)`` makes
    without its Python checks (PostgreSQL sends exactly 16 bytes): 0.5 µs against 1.1."""
    value = _new_object(uuid.UUID)
    _set_slot(value, "int", _int_of_bytes(data, "big"))
    _set_slot(value, "is_safe", _UNKNOWN_SAFETY)
    return value


def _uuid_bytes(value: Any) -> bytes:
    """A ``uuid`` parameter: a ``uuid.UUID`` (or anything with its ``bytes``) or its
    text, as asyncpg's own codec takes them."""
    if isinstance(value, str):
        return uuid.UUID(value).bytes
    data: bytes = value.bytes
    return data


async def plain_uuids(conn: asyncpg.Connection) -> None:
    """Read ``uuid`` columns as ``uuid.UUID`` itself on ``conn`` (every pool's ``init``).

    asyncpg reads them as its own subclass, ``asyncpg.pgproto.pgproto.UUID``. It
    equals and hashes as the ``uuid.UUID`` of the same value, but it is not one to
    everything: ``orjson.dumps`` refuses it ("Type is not JSON serializable"), and a
    check of ``type(value) is uuid.UUID`` fails. The in-memory adapters answer with
    the ``uuid.UUID`` they were given, so an embedder's code tested on memory must
    get the same type from PostgreSQL: ids in what the facades return (a listed
    account's, a key's account...) are then alike on every backend. Arrays and
    records of ``uuid`` use it too. A pool you create yourself for these adapters
    can pass it as ``init=``.
    """
    await conn.set_type_codec(
        "uuid",
        schema="pg_catalog",
        encoder=_uuid_bytes,
        decoder=_uuid_of_bytes,
        format="binary",
    )


async def _rollback_if_open(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _has_internals() -> bool:
    """The private names :class:`Pool` relies on exist in this asyncpg."""
    holder = (
        "_con",
        "_pool",
        "_in_use",
        "_proxy",
        "_timeout",
        "_generation",
        "_setup",
        "_inactive_callback",
        "_max_inactive_time",
    )
    holder_methods = (
        "_release",
        "_maybe_cancel_inactive_callback",
        "_deactivate_inactive_connection",
    )
    pool = (
        "_queue",
        "_closing",
        "_closed",
        "_initialized",
        "_generation",
        "_reset",
        "_loop",
        "_check_init",
    )
    connection = (
        "_stmt_cache",
        "_query_loggers",
        "_stmt_exclusive_section",
        "_protocol",
        "_listeners",
        "_log_listeners",
        "_pool_release_ctr",
        "_proxy",
        "_aborted",
        "_top_xact",
    )
    queue = ("_queue", "_getters", "_putters", "_maxsize", "_unfinished_tasks", "_finished")
    connection_methods = (
        "_do_execute",
        "_drop_global_statement_cache",
        "reload_schema_state",
        "_set_proxy",
    )
    return (
        all(name in PoolConnectionHolder.__slots__ for name in (*holder, "_max_queries"))
        and all(hasattr(PoolConnectionHolder, name) for name in holder_methods)
        and all(name in asyncpg.Pool.__slots__ or hasattr(asyncpg.Pool, name) for name in pool)
        and hasattr(asyncpg.Pool, "_acquire")
        and hasattr(asyncpg.Connection, "_on_release")
        and all(name in asyncpg.Connection.__slots__ for name in connection)
        and all(hasattr(asyncpg.Connection, name) for name in connection_methods)
        and "_acquired" in getattr(asyncpg.connection, "_Atomic").__slots__  # noqa: B009
        and hasattr(getattr(asyncpg.connection, "_StatementCache"), "get")  # noqa: B009
        and hasattr(asyncpg.protocol.Protocol, "bind_execute")
        and all(
            hasattr(asyncpg.protocol.Protocol, name)
            for name in ("get_record_class", "is_connected", "is_in_transaction")
        )
        and all(name in PoolConnectionProxy.__slots__ for name in ("_con", "_holder"))
        and all(name in vars(asyncio.LifoQueue()) for name in queue)
        and hasattr(asyncio.LifoQueue, "_wakeup_next")
        and hasattr(asyncio.Event, "clear")
        and "_value" in vars(asyncio.Event())
        and hasattr(asyncio.Future, "_callbacks")
    )


if TYPE_CHECKING:
    _AsyncpgPool = asyncpg.Pool[asyncpg.Record]
else:
    _AsyncpgPool = asyncpg.Pool


class Pool(_AsyncpgPool):
    """asyncpg's pool; acquire and release skip the awaits an idle connection does not need."""

    __slots__ = ("_idle_timers", "_released_at", "_spare_in_use")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the inactivity timers this pool armed (holder -> its handle), and when each
        #: holder was last released by :meth:`_release_idle`
        self._idle_timers: dict[Any, Any] = {}
        self._released_at: dict[Any, float] = {}
        #: holder -> the "in use" future of its last short acquire, left pending by the
        #: short release because nothing awaited it (see :meth:`_release_idle`)
        self._spare_in_use: dict[Any, Any] = {}

    # -- the inactivity timer, armed once instead of at every release ------------------
    # asyncpg cancels a connection's inactivity timer at acquire and arms a new one
    # (loop.call_later) at release: 5.6k instructions of a 160k call. Here the timer
    # armed by _release_idle stays armed while the connection is used again; when it
    # fires it looks at the last release and arms itself for the rest of the time, or
    # deactivates the connection as asyncpg's would (``_deactivate_inactive_connection``,
    # which keeps the pool's floor). Timers asyncpg armed are cancelled as before; one
    # of ours is cancelled before asyncpg's own release (which arms its own).

    def _arm_idle_timer(self, ch: Any, delay: float) -> None:
        me: Any = self
        timer = me._loop.call_later(delay, self._idle_timeout, ch)
        ch._inactive_callback = timer
        self._idle_timers[ch] = timer

    def _idle_timeout(self, ch: Any) -> None:
        me: Any = self
        timer = self._idle_timers.pop(ch, None)
        if timer is None or ch._inactive_callback is not timer:
            return  # cancelled or replaced meanwhile
        ch._inactive_callback = None
        if ch._in_use is not None:
            return  # in use: its release arms the timer again
        idle = me._loop.time() - self._released_at.get(ch, 0.0)
        if idle < ch._max_inactive_time:
            self._arm_idle_timer(ch, ch._max_inactive_time - idle)
            return
        ch._deactivate_inactive_connection()

    def _drop_idle_timer(self, connection: Any) -> None:
        """Before asyncpg's own release: it arms its timer, and refuses if one is armed."""
        if type(connection) is PoolConnectionProxy:
            ch: Any = connection._holder
            if ch is not None and self._idle_timers.get(ch) is ch._inactive_callback:
                ch._maybe_cancel_inactive_callback()

    def _take_idle(self) -> Any:
        """An idle live connection's proxy, taken without awaiting; ``None`` when there is
        none ready (empty queue, closing, reconnecting, a setup hook): then asyncpg's acquire.

        ``PoolConnectionHolder.acquire`` for an open connection, which never awaits.
        """
        me: Any = self
        queue = me._queue
        if me._closing or queue is None:
            return None
        items = queue._queue
        if not items or queue._putters:
            return None
        if not me._initialized or me._closed:
            me._check_init()  # raises
        ch: Any = items[-1]
        con = ch._con
        if (
            con is None
            or con._aborted  # Connection.is_closed()
            or not con._protocol.is_connected()
            or ch._generation != me._generation
            or ch._setup is not None
        ):
            return None  # asyncpg's acquire: it finds a live holder, reconnects or expires
        # asyncio.Queue.get_nowait on asyncpg's LIFO queue, which takes the last holder
        # when it is live (it wakes putters: there are none, checked above)
        items.pop()
        timer = ch._inactive_callback
        if timer is not None and self._idle_timers.get(ch) is not timer:
            ch._maybe_cancel_inactive_callback()  # asyncpg's (ours stays armed)
        # PoolConnectionProxy(ch, con), without its __init__ frame
        proxy: Any = _new_object(PoolConnectionProxy)
        proxy._con = con
        proxy._holder = ch
        if con._proxy is not None:
            con._set_proxy(proxy)  # raises: asyncpg's own check
        con._proxy = proxy
        ch._proxy = proxy
        # the future close() and expiry await until the release; a pending one nobody
        # awaited, kept by the short release, serves again (loop.create_future and
        # set_result cost 1.5k instructions a call)
        in_use = self._spare_in_use.pop(ch, None)
        ch._in_use = in_use if in_use is not None else me._loop.create_future()
        ch._timeout = None
        return proxy

    def _release_idle(self, connection: Any) -> bool:
        """Release ``connection`` without awaiting when it is idle; ``False`` (nothing done)
        when asyncpg's release is needed (in a transaction, cancelling, closed, expired...).

        ``Pool.release`` and ``PoolConnectionHolder.release`` when nothing needs awaiting:
        ``Connection._reset`` clears listeners, ``_rollback_if_open`` has nothing to roll back.
        """
        me: Any = self
        if type(connection) is not PoolConnectionProxy:
            return False
        proxy: Any = connection
        con: Any = proxy._con
        ch: Any = proxy._holder
        if (
            con is not None
            and ch._pool is self
            and ch._in_use is not None
            and me._reset is _rollback_if_open
            and not me._closing
            and not con._aborted  # Connection.is_closed()
            and (protocol := con._protocol).is_connected()
            and con._top_xact is None
            and not protocol.is_in_transaction()
            and not protocol._is_cancelling()
            and protocol.queries_count < ch._max_queries
            and ch._generation == me._generation
            and ch._proxy is proxy
            and (queue := me._queue) is not None
            and (queue._maxsize <= 0 or len(queue._queue) < queue._maxsize)
        ):
            if not me._initialized or me._closed:
                me._check_init()  # raises
            if con._listeners or con._log_listeners:  # _on_release warns about them
                con._on_release()
                con._listeners.clear()
                con._log_listeners.clear()
            else:  # what _on_release does when there are none
                con._pool_release_ctr += 1
            ch._timeout = None
            # PoolConnectionHolder._release: the holder is free, the proxy detached (it
            # refuses further use), the holder back in the queue (asyncio.Queue.put_nowait,
            # not full: checked above), a waiting acquire woken
            in_use = ch._in_use
            if not in_use.done():
                if in_use._callbacks:  # awaited (close, expiry...): wake them up
                    in_use.set_result(None)
                else:  # nothing awaits it: the next short acquire of ch takes it again
                    self._spare_in_use[ch] = in_use
            ch._in_use = None
            proxy._con = None
            con._proxy = None
            ch._proxy = None
            queue._queue.append(ch)
            queue._unfinished_tasks += 1
            finished = queue._finished
            if finished._value:  # Event.clear() without its frame when already clear
                finished.clear()
            if queue._getters:
                queue._wakeup_next(queue._getters)
            self._released_at[ch] = me._loop.time()
            if ch._inactive_callback is None and ch._max_inactive_time:
                self._arm_idle_timer(ch, ch._max_inactive_time)
            return True
        return False

    # asyncpg's signatures: ``timeout`` is theirs (ASYNC109)
    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109
        if timeout is None:
            proxy = self._take_idle()
            if proxy is not None:
                return proxy
        return await super()._acquire(timeout)  # type: ignore[misc]

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not self._release_idle(connection):
            self._drop_idle_timer(connection)
            await super().release(connection, timeout=timeout)

    # Pool.fetchval & co. are ``async with self.acquire() as con: return await con.X(...)``;
    # the same without the context object, its two frames and the proxy's indirection.
    # A statement already in the connection's statement cache is run straight through
    # the protocol (:func:`_run_cached`), as ``Connection._do_execute`` runs it.

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        proxy = self._take_idle()
        if proxy is None:
            proxy = await self._acquire(None)
        try:
            result: str = await proxy._con.execute(query, *args, timeout=timeout)
            return result
        finally:
            if not self._release_idle(proxy):
                self._drop_idle_timer(proxy)
                await super().release(proxy)

    async def fetch(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
        record_class: Any = None,
    ) -> list[Any]:
        proxy = self._take_idle()
        if proxy is None:
            proxy = await self._acquire(None)
        try:
            con = proxy._con
            if timeout is None and record_class is None and not con._query_loggers:
                stmt = con._stmt_cache.get((query, con._protocol.get_record_class(), False))
                if stmt is not None:
                    rows: list[Any] = await _run_cached(con, stmt, query, args, 0)
                else:
                    rows = await con.fetch(query, *args, timeout=timeout)
            else:
                rows = await con.fetch(query, *args, timeout=timeout, record_class=record_class)
            return rows
        finally:
            if not self._release_idle(proxy):
                self._drop_idle_timer(proxy)
                await super().release(proxy)

    async def fetchval(
        self,
        query: str,
        *args: Any,
        column: int | str = 0,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        proxy = self._take_idle()
        if proxy is None:
            proxy = await self._acquire(None)
        try:
            con = proxy._con
            if timeout is None and not con._query_loggers:
                stmt = con._stmt_cache.get((query, con._protocol.get_record_class(), False))
                if stmt is not None:
                    data = await _run_cached(con, stmt, query, args, 1)
                    return data[0][column] if data else None
            return await con.fetchval(query, *args, column=column, timeout=timeout)
        finally:
            if not self._release_idle(proxy):
                self._drop_idle_timer(proxy)
                await super().release(proxy)

    async def fetchrow(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
        record_class: Any = None,
    ) -> Any:
        proxy = self._take_idle()
        if proxy is None:
            proxy = await self._acquire(None)
        try:
            con = proxy._con
            if timeout is None and record_class is None and not con._query_loggers:
                stmt = con._stmt_cache.get((query, con._protocol.get_record_class(), False))
                if stmt is not None:
                    data = await _run_cached(con, stmt, query, args, 1)
                    return data[0] if data else None
            return await con.fetchrow(query, *args, timeout=timeout, record_class=record_class)
        finally:
            if not self._release_idle(proxy):
                self._drop_idle_timer(proxy)
                await super().release(proxy)


async def _run_cached(con: Any, stmt: Any, query: str, args: tuple[Any, ...], limit: int) -> Any:
    """``Connection._execute`` for a statement found in the connection's cache, no timeout.

    What asyncpg's ``_execute``, ``__execute`` and ``_do_execute`` do then, without their
    frames: the exclusive section, one ``bind_execute``, and on a stale cache its
    handling (reload the schema state and raise; or drop the statement caches and, out
    of a transaction, prepare and run once more).
    """
    section = con._stmt_exclusive_section
    if section._acquired:
        raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
    section._acquired = 1
    try:
        protocol = con._protocol
        try:
            return await protocol.bind_execute(stmt, args, "", limit, False, None)
        except OutdatedSchemaCacheError:
            await con.reload_schema_state()
            raise
        except InvalidCachedStatementError:
            con._drop_global_statement_cache()
            if protocol.is_in_transaction():
                raise

            def executor(statement: Any, timeout: float | None) -> Any:
                return protocol.bind_execute(statement, args, "", limit, False, timeout)

            result, _ = await con._do_execute(query, executor, None, retry=False)
            return result
    finally:
        section._acquired = 0


_FAST = _has_internals()


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    server_settings: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    """Open a pool; raises ``ServiceUnavailable`` when the server cannot be reached."""
    settings = {**DEFAULT_SERVER_SETTINGS, **(server_settings or {})}
    with translated():
        if not _FAST:  # pragma: no cover - an asyncpg whose pool internals differ
            return await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                init=plain_uuids,
                reset=_rollback_if_open,
                server_settings=settings,
            )
        # asyncpg.create_pool's defaults, on our subclass
        pool = Pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            max_queries=50000,
            max_inactive_connection_lifetime=300.0,
            setup=None,
            init=plain_uuids,
            reset=_rollback_if_open,
            loop=None,
            connection_class=asyncpg.Connection,
            record_class=asyncpg.Record,
            server_settings=settings,
        )
        return await pool
