"""In-memory user store for the self-hosted identity provider."""

from __future__ import annotations

import msgspec

from finbank_core.auth.errors import UsernameTaken
from finbank_core.auth.users import UserRecord
from finbank_core.shared.errors import NotFound


class InMemoryUserStore:
    def __init__(self) -> None:
        self._by_subject: dict[str, UserRecord] = {}
        self._by_username: dict[str, str] = {}

    async def add(self, user: UserRecord) -> None:
        key = user.username.casefold()
        if key in self._by_username or user.subject in self._by_subject:
            raise UsernameTaken()
        self._by_subject[user.subject] = user
        self._by_username[key] = user.subject

    async def get_by_username(self, username: str) -> UserRecord | None:
        subject = self._by_username.get(username.casefold())
        return self._by_subject.get(subject) if subject else None

    async def get(self, subject: str) -> UserRecord | None:
        return self._by_subject.get(subject)

    async def update(self, user: UserRecord) -> None:
        current = self._by_subject.get(user.subject)
        if current is None:
            raise NotFound("user not found")
        if current.username.casefold() != user.username.casefold():
            raise UsernameTaken("usernames cannot change")
        self._by_subject[user.subject] = msgspec.structs.replace(
            user, totp_last_step=_later(current.totp_last_step, user.totp_last_step)
        )

    async def claim_totp_step(self, subject: str, step: int) -> bool:
        # No await between the read and the write: atomic on one event loop.
        current = self._by_subject.get(subject)
        if current is None or (
            current.totp_last_step is not None and current.totp_last_step >= step
        ):
            return False
        self._by_subject[subject] = msgspec.structs.replace(current, totp_last_step=step)
        return True


def _later(stored: int | None, given: int | None) -> int | None:
    if stored is None or given is None:
        return stored if given is None else given
    return max(stored, given)
