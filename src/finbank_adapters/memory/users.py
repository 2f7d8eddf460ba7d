"""In-memory user store for the self-hosted identity provider.

With a ``cipher`` (the container gives one, as it does to the PostgreSQL
store) the TOTP secrets are kept sealed, exactly as PostgreSQL keeps them:
a memory dump or a stray ``repr`` of the store's state shows no secret.
"""

from __future__ import annotations

import msgspec

from finbank_adapters.crypto.envelope import EnvelopeCipher, is_sealed
from finbank_core.auth.errors import UsernameTaken
from finbank_core.auth.users import UserRecord
from finbank_core.shared.errors import NotFound


class InMemoryUserStore:
    def __init__(self, cipher: EnvelopeCipher | None = None) -> None:
        self._cipher = cipher
        self._by_subject: dict[str, UserRecord] = {}
        self._by_username: dict[str, str] = {}

    async def add(self, user: UserRecord) -> None:
        key = user.username.casefold()
        if key in self._by_username or user.subject in self._by_subject:
            raise UsernameTaken()
        sealed = msgspec.structs.replace(await self._sealed(user), version=0)
        if key in self._by_username or user.subject in self._by_subject:
            raise UsernameTaken()  # added by another caller while sealing
        self._by_subject[user.subject] = sealed
        self._by_username[key] = user.subject

    async def get_by_username(self, username: str) -> UserRecord | None:
        subject = self._by_username.get(username.casefold())
        return await self.get(subject) if subject else None

    async def get(self, subject: str) -> UserRecord | None:
        stored = self._by_subject.get(subject)
        return await self._opened(stored) if stored is not None else None

    async def update(self, user: UserRecord) -> None:
        await self._write(user, compare=False)

    async def replace(self, user: UserRecord) -> UserRecord | None:
        return await self._write(user, compare=True)

    async def _write(self, user: UserRecord, *, compare: bool) -> UserRecord | None:
        sealed = await self._sealed(user)
        # No await from here to the write: the check and the write are one step.
        current = self._by_subject.get(user.subject)
        if current is None:
            raise NotFound("user not found")
        if current.username.casefold() != user.username.casefold():
            raise UsernameTaken("usernames cannot change")
        if compare and current.version != user.version:
            return None
        step = _later(current.totp_last_step, user.totp_last_step)
        stored = msgspec.structs.replace(sealed, totp_last_step=step, version=current.version + 1)
        self._by_subject[user.subject] = stored
        return msgspec.structs.replace(user, totp_last_step=step, version=stored.version)

    async def claim_totp_step(self, subject: str, step: int) -> bool:
        # No await between the read and the write: atomic on one event loop.
        current = self._by_subject.get(subject)
        if current is None or (
            current.totp_last_step is not None and current.totp_last_step >= step
        ):
            return False
        self._by_subject[subject] = msgspec.structs.replace(current, totp_last_step=step)
        return True

    async def _sealed(self, user: UserRecord) -> UserRecord:
        if self._cipher is None:
            return user
        changes = {}
        for field in ("totp_secret", "pending_totp_secret"):
            value = getattr(user, field)
            if value is not None:
                changes[field] = await self._cipher.seal(value, _context(user.subject, field))
        return msgspec.structs.replace(user, **changes)

    async def _opened(self, user: UserRecord) -> UserRecord:
        changes = {}
        for field in ("totp_secret", "pending_totp_secret"):
            value = getattr(user, field)
            if is_sealed(value):
                if self._cipher is None:  # pragma: no cover - sealed only with a cipher
                    raise AssertionError("sealed without a cipher")
                changes[field] = await self._cipher.open(value, _context(user.subject, field))
        return msgspec.structs.replace(user, **changes) if changes else user


def _context(subject: str, field: str) -> str:
    return f"auth_users/{subject}/{field}"


def _later(stored: int | None, given: int | None) -> int | None:
    if stored is None or given is None:
        return stored if given is None else given
    return max(stored, given)
