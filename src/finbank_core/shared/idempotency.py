"""Idempotent requests while the first one is still in flight.

A request identified by a client's idempotency key may be sent again before
the first one has finished (a client timeout, a retry, a double click). A
replay that arrives *after* the first finished is answered from what the
first stored. One that arrives *during* it must not run the flow a second
time (it would see the money the first reserved as gone and answer a false
``insufficient_funds``) and cannot be answered yet either; the IETF httpapi
idempotency-key draft answers it ``409 Conflict`` and the client retries
after ``Retry-After`` seconds. :class:`RequestInProgress` is that answer.

"In flight" has to be known by every process and replica, so it is a
durable claim in a shared store (:class:`RequestClaims`), taken atomically
before the flow starts and released when it ends, whatever the outcome. A
claim carries a lease: if its holder dies, the claim frees itself when the
lease ends and a later request runs the flow (the store's own conditions,
e.g. a unique idempotency key on the record, still keep it exactly once).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import ClassVar, Protocol

import msgspec

from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import Conflict, InvalidInput, ServiceUnavailable
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import find_unstorable

#: how long a claim holds without its holder releasing it (a crashed holder)
DEFAULT_LEASE_SECONDS = 30
#: what a replay that found the first request in flight is told to wait
DEFAULT_RETRY_AFTER_SECONDS = 1
#: the pauses between a waiting holder's attempts (:meth:`InFlightGuard.hold`'s
#: ``wait``): 2 ms doubling to 64 ms, about 1.5 s in all before it gives up
WAIT_PAUSES: tuple[float, ...] = (0.002, 0.004, 0.008, 0.016, 0.032) + (0.064,) * 22


class RequestInProgress(Conflict):
    """A request with the same idempotency key is still being processed; retry later.

    ``retry_after_seconds`` is what HTTP sends as ``Retry-After``.
    """

    code: ClassVar[str] = "idempotency_request_in_progress"
    title: ClassVar[str] = "A request with this idempotency key is still being processed"

    def __init__(
        self, message: str | None = None, *, retry_after_seconds: int = DEFAULT_RETRY_AFTER_SECONDS
    ) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)
        self.retry_after_seconds = retry_after_seconds


class RequestClaims(Protocol):
    """Durable "in flight" markers of idempotent requests, shared by every replica.

    ``claim_id`` is opaque (see :func:`claim_id_for`); ``token`` tells one
    holder from another. Both methods are atomic in the store.
    """

    async def acquire(self, claim_id: str, token: str, *, now: datetime, until: datetime) -> bool:
        """Take the claim for ``token`` until ``until``; True if taken.

        Taken if no claim ``claim_id`` exists or the one that exists has a
        lease ending at or before ``now``; otherwise nothing changes and the
        answer is False (also when ``token`` itself holds it).
        """
        ...

    async def release(self, claim_id: str, token: str) -> None:
        """Drop the claim if ``token`` still holds it; otherwise do nothing."""
        ...


def claim_id_for(scope: str, *parts: str) -> str:
    """A fixed-size id for a request: its scope and the parts that identify it.

    Hashed, so an owner id or key of any length or alphabet fits every store,
    and length-prefixed, so different parts cannot join into the same string.
    """
    digest = hashlib.sha256()
    for part in (scope, *parts):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    return digest.hexdigest()


class InFlightGuard:
    """Runs a block while holding the claim of one request; the others get ``RequestInProgress``."""

    def __init__(
        self,
        claims: RequestClaims,
        clock: Clock,
        ids: IdGenerator,
        *,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        retry_after_seconds: int = DEFAULT_RETRY_AFTER_SECONDS,
    ) -> None:
        if lease_seconds <= 0 or retry_after_seconds <= 0:
            raise ValueError("the lease and Retry-After must be positive")
        self._claims = claims
        self._clock = clock
        self._ids = ids
        self._lease = timedelta(seconds=lease_seconds)
        self._retry_after_seconds = retry_after_seconds

    @asynccontextmanager
    async def hold(
        self, scope: str, *parts: str, wait: bool = False, busy: str | None = None
    ) -> AsyncIterator[None]:
        """Hold the claim of ``(scope, *parts)`` for the block, released on any exit.

        Raises ``RequestInProgress`` at once if another holder has it; with
        ``wait``, only after trying again through :data:`WAIT_PAUSES` (for
        different requests that must take turns on one aggregate, each short).
        ``busy`` replaces the refusal's message.
        """
        claim_id = claim_id_for(scope, *parts)
        token = str(self._ids.new_id())
        pauses = iter(WAIT_PAUSES if wait else ())
        while True:
            now = self._clock.now()
            if await self._claims.acquire(claim_id, token, now=now, until=now + self._lease):
                break
            pause = next(pauses, None)
            if pause is None:
                raise RequestInProgress(
                    (busy or "a request with this idempotency key is still being processed")
                    + f"; retry in {self._retry_after_seconds} s",
                    retry_after_seconds=self._retry_after_seconds,
                )
            await asyncio.sleep(pause)
        try:
            yield
        finally:
            # A claim left behind (store down, cancelled) frees itself when its lease ends.
            with contextlib.suppress(ServiceUnavailable):
                await self._claims.release(claim_id, token)


def fingerprint(request: msgspec.Struct) -> str:
    """A stable digest of a request, to tell a replay from a reuse of its idempotency key.

    ``InvalidInput`` naming the field when some text of ``request`` cannot be
    encoded (an unpaired surrogate): no backend could store it either.
    """
    try:
        encoded = msgspec.json.encode(request)
    except UnicodeEncodeError:
        found = find_unstorable(request)
        if found is None:
            raise
        field, wrong = found
        raise InvalidInput(f"{field} must not contain {wrong}", field=field) from None
    return hashlib.sha256(encoded).hexdigest()
