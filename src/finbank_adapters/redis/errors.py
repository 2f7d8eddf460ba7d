"""The one place where Redis errors become core errors.

Any failure to talk to Redis is ``ServiceUnavailable``: callers fail closed
(no MFA answered, no token accepted) and the HTTP layer answers 503. Only the
exception class is logged; messages may echo keys or arguments.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from redis.exceptions import RedisError

from finbank_core.shared.errors import ServiceUnavailable

logger = logging.getLogger("finbank.redis")


@contextmanager
def redis_errors(store: str) -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        logger.warning("redis %s store failed: %s", store, type(exc).__name__)
        raise ServiceUnavailable(f"the {store} store is unavailable") from None


def hashed(value: str) -> str:
    """Keys carry a digest, not the value: no bearer ids or usernames in ``KEYS *``."""
    return hashlib.sha256(value.encode()).hexdigest()


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
