"""The clock port: every rule that depends on time asks an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

#: the first and last instants a ``datetime`` can hold in UTC
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


class Clock(Protocol):
    """Tells the current instant."""

    def now(self) -> datetime:
        """Return the current time as a timezone-aware UTC ``datetime``."""
        ...


def utc_bound(when: datetime) -> datetime:
    """An aware range bound (``since``, ``until``) in UTC, clamped to what UTC can hold.

    ``0001-01-01T00:00+01:00`` is a valid aware ``datetime`` whose UTC instant
    (year 0) is not: Python compares it with other instants all the same, but
    it cannot be converted, stored or sent to a database (asyncpg refused it).
    No stored instant lies before :data:`EARLIEST` or after :data:`LATEST`, so
    a bound beyond them selects exactly what the clamped one does, and every
    backend answers such a filter alike.
    """
    try:
        return when.astimezone(UTC)
    except OverflowError:
        return EARLIEST if when.year == EARLIEST.year else LATEST
