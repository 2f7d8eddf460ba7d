"""Key look-up protection: a token bucket per customer, as the directory expects.

The DICT limits look-ups by the paying user to stop keys from being scraped
(Manual Operacional do DICT, "mecanismos de prevenção a ataques de
leitura"): each user has a bucket of tokens refilled at a fixed rate up to
its size; a look-up needs a token, costs 1 when the key exists and 20 when it
does not (a miss is what scraping produces). Defaults below are the manual's
user figures: an individual 100 tokens refilled at 2 a minute, a company
1,000 at 20 a minute. A look-up with an empty bucket is refused with the
time until a token is back.
"""

from __future__ import annotations

import math
from datetime import datetime

import msgspec

from finbank_core.accounts.model import HolderType


class BucketPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """A bucket's size and refill rate."""

    capacity: int
    refill_per_minute: float

    def retry_after(self, tokens: float, needed: float = 1.0) -> int:
        """Whole seconds until ``tokens`` grows to ``needed`` (at least 1)."""
        missing = max(needed - tokens, 0.0)
        return max(1, math.ceil(missing * 60.0 / self.refill_per_minute))


class LookupLimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    individual: BucketPolicy = BucketPolicy(capacity=100, refill_per_minute=2)
    company: BucketPolicy = BucketPolicy(capacity=1000, refill_per_minute=20)
    #: tokens a look-up of an existing key costs
    found_cost: int = 1
    #: tokens a look-up of a key that does not exist costs (the manual's penalty)
    not_found_cost: int = 20

    def policy(self, holder_type: HolderType) -> BucketPolicy:
        return self.company if holder_type is HolderType.COMPANY else self.individual


class BucketTake(msgspec.Struct, frozen=True, kw_only=True):
    """What a take left: ``allowed`` and the tokens remaining (or, refused, the wait)."""

    allowed: bool
    tokens: float
    retry_after_seconds: int = 0


def refill(tokens: float, last: datetime, now: datetime, policy: BucketPolicy) -> float:
    """The bucket at ``now``: ``tokens`` plus what refilled since ``last``, capped."""
    elapsed = max((now - last).total_seconds(), 0.0)
    return min(float(policy.capacity), tokens + elapsed * policy.refill_per_minute / 60.0)


def take(
    tokens: float, last: datetime | None, now: datetime, policy: BucketPolicy, cost: int
) -> BucketTake:
    """The rule every adapter applies atomically.

    A new bucket is full. A take needs at least one token; it then removes
    ``cost`` (never below zero: the penalty of a miss empties the bucket at
    most). Refused, nothing is removed.
    """
    current = float(policy.capacity) if last is None else refill(tokens, last, now, policy)
    if current < 1.0:
        return BucketTake(
            allowed=False, tokens=current, retry_after_seconds=policy.retry_after(current)
        )
    return BucketTake(allowed=True, tokens=max(current - cost, 0.0))
