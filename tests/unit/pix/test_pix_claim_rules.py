"""The pure rules of key claims and look-up buckets, and what their reprs show."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from finbank_core.accounts.model import AccountKind, HolderType
from finbank_core.pix.claims import (
    BucketPolicy,
    CancelReason,
    ClaimAccount,
    ClaimParty,
    ClaimStatus,
    ClaimType,
    IllegalKeyClaimTransition,
    KeyClaim,
)
from finbank_core.pix.claims.lookups import take
from finbank_core.pix.claims.model import ClaimSettings, completed, due_step
from finbank_core.pix.claims.use_cases import (
    LookupPixKeyCommand,
    OpenKeyClaimCommand,
    ReceiveKeyClaimCommand,
)
from finbank_core.pix.codes.keys import PixKey, PixKeyType

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
DOCUMENT = "52998224725"
PHONE = PixKey.parse("+5511988887777")


def side(owner: str | None) -> ClaimAccount:
    return ClaimAccount(
        ispb="99999999",
        branch="0001",
        account_number="100-1",
        account_kind=AccountKind.PAYMENT,
        holder_type=HolderType.INDIVIDUAL,
        holder_name="Ana",
        holder_document=DOCUMENT,
        account_id=uuid.uuid4() if owner else None,
        owner_id=owner,
    )


def claim(claim_type: ClaimType, status: ClaimStatus = ClaimStatus.WAITING_RESOLUTION) -> KeyClaim:
    resolution, completion = ClaimSettings().periods(T0)
    return KeyClaim(
        id=uuid.uuid4(),
        claim_type=claim_type,
        key=PHONE,
        status=status,
        claimer=side("ana"),
        donor=side("bia"),
        donor_key_id=uuid.uuid4(),
        opened_at=T0,
        resolution_ends_at=resolution,
        completion_ends_at=completion,
        updated_at=T0,
    )


def test_periods_are_7_days_then_30_more() -> None:
    resolution, completion = ClaimSettings().periods(T0)
    assert resolution == T0 + timedelta(days=7)
    assert completion == T0 + timedelta(days=37)


@pytest.mark.parametrize("claim_type", list(ClaimType))
def test_nothing_is_due_just_before_the_resolution_end(claim_type: ClaimType) -> None:
    c = claim(claim_type)
    assert due_step(c, c.resolution_ends_at - timedelta(microseconds=1)) is None


def test_at_the_resolution_end_portability_lapses_and_ownership_is_confirmed() -> None:
    portability = claim(ClaimType.PORTABILITY)
    lapsed = due_step(portability, portability.resolution_ends_at)
    assert lapsed is not None
    assert (lapsed.status, lapsed.cancelled_by, lapsed.cancel_reason) == (
        ClaimStatus.CANCELLED,
        ClaimParty.DIRECTORY,
        CancelReason.DEFAULT_OPERATION,
    )
    ownership = claim(ClaimType.OWNERSHIP)
    given = due_step(ownership, ownership.resolution_ends_at)
    assert given is not None
    assert (given.status, given.confirmed_by) == (ClaimStatus.CONFIRMED, ClaimParty.DIRECTORY)


def test_a_confirmed_claim_lapses_at_the_completion_end() -> None:
    c = claim(ClaimType.OWNERSHIP, ClaimStatus.CONFIRMED)
    assert due_step(c, c.completion_ends_at - timedelta(microseconds=1)) is None
    lapsed = due_step(c, c.completion_ends_at)
    assert lapsed is not None
    assert lapsed.status is ClaimStatus.CANCELLED


def test_final_claims_have_no_due_step_and_refuse_steps() -> None:
    c = claim(ClaimType.OWNERSHIP, ClaimStatus.CANCELLED)
    assert due_step(c, c.completion_ends_at + timedelta(days=100)) is None
    with pytest.raises(IllegalKeyClaimTransition):
        completed(c, T0)


def test_the_bucket_rule() -> None:
    policy = BucketPolicy(capacity=100, refill_per_minute=2)
    assert take(0, None, T0, policy, 1).tokens == 99  # a new bucket is full
    assert take(5, T0, T0, policy, 20).tokens == 0  # never below zero
    refused = take(0.5, T0, T0, policy, 1)
    assert not refused.allowed
    assert refused.retry_after_seconds == 15  # half a token at 2 a minute
    assert take(0, T0, T0 + timedelta(seconds=30), policy, 1).allowed
    assert take(99, T0, T0 + timedelta(days=1), policy, 0).tokens == 100  # capped


def test_no_key_or_document_in_reprs() -> None:
    c = claim(ClaimType.OWNERSHIP)
    commands = [
        c,
        OpenKeyClaimCommand(
            owner_id="ana",
            account_id=uuid.uuid4(),
            claim_type=ClaimType.OWNERSHIP,
            key_type=PixKeyType.PHONE,
            key=PHONE.value,
        ),
        LookupPixKeyCommand(owner_id="ana", account_id=uuid.uuid4(), key=PHONE.value),
        ReceiveKeyClaimCommand(
            claim_id=uuid.uuid4(), claim_type=ClaimType.OWNERSHIP, key=PHONE, claimer=side(None)
        ),
    ]
    for value in commands:
        text = repr(value)
        assert DOCUMENT not in text, text
        assert "988887777" not in text, text


def test_an_ownership_claim_never_acknowledged_lapses_instead_of_confirming() -> None:
    c = claim(ClaimType.OWNERSHIP, ClaimStatus.OPEN)
    lapsed = due_step(c, c.resolution_ends_at)
    assert lapsed is not None
    assert lapsed.status is ClaimStatus.CANCELLED
