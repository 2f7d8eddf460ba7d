"""``RedisPipe``: the token denylist's pipelined connection, against a real Redis.

Many commands in flight on one connection must each get their own reply, even
when some callers are cancelled or a command fails; a lost connection or a
server that stops answering fails the waiting commands (never leaves them
hanging) and the next command connects again; the pipe speaks only for
clients whose options it applies (else the client is used as it is).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import hiredis
import pytest
from redis.asyncio import Redis
from redis.credentials import UsernamePasswordCredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from finbank_adapters.memory import FakeClock
from finbank_adapters.postgres import PostgresTokenDenylist
from finbank_adapters.redis import RedisCachedTokenDenylist, RedisTokenDenylist
from finbank_adapters.redis.pipe import RedisPipe, close_pipe, pipe_for
from finbank_core.shared.errors import ServiceUnavailable
from tests.postgres_support import isolated_schema, require_postgres
from tests.support_redis import REDIS_HOST, REDIS_PORT, open_test_redis, own_redis_server

pytestmark = pytest.mark.services


@pytest.fixture
async def shared() -> AsyncIterator[tuple[Redis, str, RedisPipe]]:
    async with open_test_redis() as (client, prefix):
        pipe = pipe_for(client)
        assert pipe is not None
        yield client, prefix, pipe


async def pipe_connections(client: Redis, name: str) -> list[str]:
    """The ids of the connections named ``name`` (the shared Redis has other users)."""
    clients = await client.client_list()
    return [str(c["id"]) for c in clients if c.get("name") == name]


def test_pipe_only_for_options_it_applies() -> None:
    plain = Redis(host="127.0.0.1", port=6379, socket_timeout=1)
    assert pipe_for(plain) is pipe_for(plain) is not None  # one per client
    assert pipe_for(Redis.from_url("unix:///tmp/redis.sock?db=2")) is not None
    for refused in (
        Redis.from_url("rediss://127.0.0.1:6379/0"),
        Redis(host="127.0.0.1", decode_responses=True),
        Redis(host="127.0.0.1", protocol=3),
        Redis(
            host="127.0.0.1",
            credential_provider=UsernamePasswordCredentialProvider("u", "p"),
        ),
    ):
        assert pipe_for(refused) is None


async def test_concurrent_commands_each_get_their_own_reply(
    shared: tuple[Redis, str, RedisPipe],
) -> None:
    client, prefix, pipe = shared
    keys = [f"{prefix}k{n}" for n in range(300)]
    await client.mset({key: str(n) for n, key in enumerate(keys)})
    replies = await asyncio.gather(*(pipe.execute("GET", key) for key in keys))
    assert replies == [str(n).encode() for n in range(300)]
    multi = await asyncio.gather(
        *(pipe.execute("MGET", keys[n], f"{prefix}missing", keys[-1 - n]) for n in range(300))
    )
    assert multi == [[str(n).encode(), None, str(299 - n).encode()] for n in range(300)]


async def test_each_command_is_written_when_it_is_sent(
    shared: tuple[Redis, str, RedisPipe],
) -> None:
    """Not gathered until the end of the loop's turn: the first request's check is on the
    wire while the requests that arrived with it are still being handled."""
    client, prefix, pipe = shared
    keys = [f"{prefix}w{n}" for n in range(40)]
    await client.mset({key: str(n) for n, key in enumerate(keys)})
    assert await pipe.execute("PING") == b"PONG"  # connected
    conn = pipe._conn
    assert conn is not None
    assert conn.transport is not None
    transport = conn.transport
    writes: list[bytes] = []

    class Counting:
        def write(self, data: bytes) -> None:
            writes.append(data)
            transport.write(data)

        def __getattr__(self, name: str) -> object:
            return getattr(transport, name)

    conn.transport = Counting()  # type: ignore[assignment]
    try:
        first = asyncio.create_task(pipe.execute("GET", keys[0]))
        await asyncio.sleep(0)  # the task runs up to its reply's wait, nothing else
        assert writes == [b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(keys[0]), keys[0].encode())]
        assert await first == b"0"
        replies = await asyncio.gather(*(pipe.execute("GET", key) for key in keys))
        assert replies == [str(n).encode() for n in range(40)]
        assert len(writes) == 41  # one each, in the order they were sent
        assert [w.rsplit(b"\r\n", 2)[-2] for w in writes[1:]] == [k.encode() for k in keys]
    finally:
        conn.transport = transport


async def test_cancelled_callers_do_not_shift_the_replies(
    shared: tuple[Redis, str, RedisPipe],
) -> None:
    client, prefix, pipe = shared
    keys = [f"{prefix}c{n}" for n in range(200)]
    await client.mset({key: str(n) for n, key in enumerate(keys)})
    tasks = [asyncio.create_task(pipe.execute("GET", key)) for key in keys]
    await asyncio.sleep(0)  # every command is sent; no reply has been read yet
    for task in tasks[::3]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for n, result in enumerate(results):
        if n % 3 == 0:
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert result == str(n).encode()
    assert await pipe.execute("GET", keys[7]) == b"7"


async def test_an_error_reply_fails_its_command_only(
    shared: tuple[Redis, str, RedisPipe],
) -> None:
    client, prefix, pipe = shared
    await client.set(f"{prefix}text", "not a number")
    await client.set(f"{prefix}n", "41")
    results = await asyncio.gather(
        pipe.execute("GET", f"{prefix}n"),
        pipe.execute("INCR", f"{prefix}text"),
        pipe.execute("INCR", f"{prefix}n"),
        return_exceptions=True,
    )
    assert results[0] == b"41"
    assert isinstance(results[1], ResponseError)
    assert results[2] == 42


async def test_a_lost_connection_fails_the_waiting_and_the_next_reconnects(
    shared: tuple[Redis, str, RedisPipe],
) -> None:
    client, prefix, _ = shared
    name = f"pipe-{secrets.token_hex(4)}"
    named = Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=5, client_name=name)
    pipe = pipe_for(named)
    assert pipe is not None
    try:
        await client.set(f"{prefix}x", "1")
        assert await pipe.execute("GET", f"{prefix}x") == b"1"
        [connection] = await pipe_connections(client, name)
        # BLPOP holds the connection's answers: the GETs behind it wait until it is killed
        blocked = asyncio.create_task(pipe.execute("BLPOP", f"{prefix}never", 0))
        waiting = [asyncio.create_task(pipe.execute("GET", f"{prefix}x")) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in [blocked, *waiting])
        assert await client.client_kill_filter(_id=connection) == 1
        for task in [blocked, *waiting]:
            with pytest.raises(RedisConnectionError):
                await task
        assert await pipe.execute("GET", f"{prefix}x") == b"1"  # connected again
    finally:
        await close_pipe(named)
        await named.aclose()
    assert await pipe_connections(client, name) == []


async def test_a_server_that_stops_answering_times_out() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = RedisPipe(host="127.0.0.1", port=port, timeout=0.2, connect_timeout=1)
    try:
        results = await asyncio.gather(
            *(pipe.execute("GET", f"k{n}") for n in range(4)), return_exceptions=True
        )
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        with pytest.raises(RedisTimeoutError):  # a new connection, as silent
            await pipe.execute("GET", "k")
        assert len(accepted) == 2
    finally:
        await pipe.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_unreachable_server_is_a_connection_error() -> None:
    with own_redis_server() as (process, port):
        pipe = RedisPipe(host="127.0.0.1", port=port, timeout=1, connect_timeout=1)
        assert await pipe.execute("PING") == b"PONG"
        process.kill()
        process.wait(timeout=10)
        with pytest.raises(RedisConnectionError):
            await pipe.execute("PING")
        with pytest.raises(RedisConnectionError):
            await pipe.execute("PING")  # and each later command tries to connect again
        await pipe.aclose()


async def test_password_and_database_are_applied() -> None:
    with own_redis_server() as (_, port):
        admin = Redis(host="127.0.0.1", port=port, socket_timeout=2)
        password = secrets.token_hex(8)
        await admin.config_set("requirepass", password)
        await admin.aclose()
        right = Redis(host="127.0.0.1", port=port, db=3, password=password, socket_timeout=2)
        wrong = Redis(host="127.0.0.1", port=port, password="wrong", socket_timeout=2)
        try:
            pipe = pipe_for(right)
            assert pipe is not None
            assert await pipe.execute("SET", "where", "db3") == b"OK"
            assert await right.get("where") == b"db3"  # the client's own database
            other = Redis(host="127.0.0.1", port=port, db=0, password=password)
            assert await other.get("where") is None
            await other.aclose()
            refused = pipe_for(wrong)
            assert refused is not None
            with pytest.raises(ResponseError):
                await refused.execute("GET", "where")
        finally:
            await close_pipe(right)
            await close_pipe(wrong)
            await right.aclose()
            await wrong.aclose()


async def test_denylists_answer_through_the_pipe_and_fall_back_without_redis() -> None:
    """Revocations written through the client are seen by checks on the pipe at once; with
    Redis gone, the cached denylist still answers from PostgreSQL, the plain one fails closed."""
    require_postgres()
    clock = FakeClock()
    with own_redis_server() as (process, port):
        client = Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            async with isolated_schema(max_size=4) as (pool, _):
                cached = RedisCachedTokenDenylist(client, clock, PostgresTokenDenylist(pool, clock))
                plain = RedisTokenDenylist(client, clock, key_prefix="plain:")
                assert pipe_for(client) is not None
                until = clock.now() + timedelta(days=1)
                assert not await cached.is_revoked("a")
                await cached.revoke("a", until)
                await plain.revoke("b", until)
                checks = await asyncio.gather(
                    *(cached.is_revoked("a") for _ in range(50)),
                    *(cached.is_revoked("x", "a") for _ in range(50)),
                    *(cached.is_revoked("x") for _ in range(50)),
                    *(plain.is_revoked("b") for _ in range(50)),
                    *(plain.is_revoked("a") for _ in range(50)),
                )
                assert checks == [True] * 100 + [False] * 50 + [True] * 50 + [False] * 50
                process.kill()
                process.wait(timeout=10)
                assert await cached.is_revoked("a")
                assert not await cached.is_revoked("x")
                with pytest.raises(ServiceUnavailable):
                    await plain.is_revoked("b")
        finally:
            await close_pipe(client)
            await client.aclose()


async def test_an_idle_connection_is_pinged_first_and_replaced_if_dead() -> None:
    """Commands seen by a fake server: a PING only after an idle spell; a connection whose
    PING goes unanswered is dropped and the command goes on a new one."""
    seen: list[list[bytes]] = []
    connections: list[asyncio.StreamWriter] = []
    mute_pings = False

    async def recorder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        parser = hiredis.Reader()
        while data := await reader.read(65536):
            parser.feed(data)
            while (command := parser.gets()) is not False:
                seen.append(command)
                if command == [b"PING"] and mute_pings:
                    continue
                writer.write(b"+PONG\r\n" if command == [b"PING"] else b"+OK\r\n")

    server = await asyncio.start_server(recorder, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # 2 s, not 0.3: every command that must be answered is under this timeout too, and a
    # pause of the test process (a full GC, a busy host) longer than it failed "GET a"
    pipe = RedisPipe(host="127.0.0.1", port=port, timeout=2, health_check_interval=600)

    def idle_for_long() -> None:  # as if the last command went 601 s ago
        assert pipe._conn is not None
        pipe._conn.last_sent -= 601

    try:
        assert await pipe.execute("GET", "a") == b"OK"
        assert await pipe.execute("GET", "b") == b"OK"  # not idle: no PING
        idle_for_long()
        assert await pipe.execute("GET", "c") == b"OK"
        assert seen == [[b"GET", b"a"], [b"GET", b"b"], [b"PING"], [b"GET", b"c"]]
        assert len(connections) == 1
        mute_pings = True
        idle_for_long()
        assert await pipe.execute("GET", "d") == b"OK"
        assert seen[4:] == [[b"PING"], [b"GET", b"d"]]
        assert len(connections) == 2  # the unanswered PING's connection was replaced
    finally:
        await pipe.aclose()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
