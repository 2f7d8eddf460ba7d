"""The steps after opening: the donor confirms or cancels, the claimer cancels or completes."""

from __future__ import annotations

import uuid

import msgspec

from finbank_core.pix.claims.errors import (
    IllegalKeyClaimTransition,
    KeyClaimNotAllowed,
    KeyClaimNotFound,
    KeyClaimPeriodEnded,
    KeyClaimVersionConflict,
)
from finbank_core.pix.claims.model import (
    CancelReason,
    ClaimParty,
    ClaimStatus,
    ClaimType,
    KeyClaim,
    cancelled,
    completing,
    confirmed,
)
from finbank_core.pix.claims.use_cases.steps import ClaimSteps
from finbank_core.pix.errors import PixKeyLimitReached
from finbank_core.shared.inputs import checked_enums


class ConfirmKeyClaimCommand(msgspec.Struct, frozen=True, kw_only=True):
    """The donor (our customer) gives the key up."""

    owner_id: str
    claim_id: uuid.UUID


class CancelKeyClaimCommand(msgspec.Struct, frozen=True, kw_only=True):
    """The donor refuses (portability) or contests (ownership), or the claimer withdraws."""

    owner_id: str
    claim_id: uuid.UUID
    reason: CancelReason = CancelReason.USER_REQUESTED


class CompleteKeyClaimCommand(msgspec.Struct, frozen=True, kw_only=True):
    """The claimer binds the confirmed key to its account.

    ``owner_id`` is our customer; ``None`` is the claimer's institution
    through the network (a claim another institution opened on a key held
    here: the sandbox drives it).
    """

    claim_id: uuid.UUID
    owner_id: str | None = None


def _period_ended(what: str, claim: KeyClaim) -> KeyClaimPeriodEnded:
    return KeyClaimPeriodEnded(
        f"the {what} period of this claim has ended", period=what, status=claim.status.value
    )


class ConfirmKeyClaim:
    """The donor confirms, within the resolution period: ``CONFIRMED``; the claimer may complete."""

    def __init__(self, *, steps: ClaimSteps) -> None:
        self._steps = steps

    async def __call__(self, cmd: ConfirmKeyClaimCommand) -> KeyClaim:
        claim = await self._steps.get_visible(cmd.claim_id, cmd.owner_id)
        if not claim.is_donor(cmd.owner_id):
            raise KeyClaimNotAllowed("only the key's holder confirms a claim", field="claim_id")
        if claim.status is ClaimStatus.CONFIRMED and claim.confirmed_by is ClaimParty.DONOR:
            return claim  # a replay
        if claim.status not in (ClaimStatus.OPEN, ClaimStatus.WAITING_RESOLUTION):
            if claim.cancel_reason is CancelReason.DEFAULT_OPERATION or (
                claim.confirmed_by is ClaimParty.DIRECTORY
            ):
                raise _period_ended("resolution", claim)
            raise IllegalKeyClaimTransition(
                f"a {claim.status.value} claim cannot be confirmed", status=claim.status.value
            )
        step = confirmed(claim, ClaimParty.DONOR, self._steps.clock.now())
        try:
            return await self._steps.save(claim, step)
        except KeyClaimVersionConflict:
            again = await self._steps.current(cmd.claim_id)
            if again.status is ClaimStatus.CONFIRMED and again.confirmed_by is ClaimParty.DONOR:
                return again
            raise


class CancelKeyClaim:
    """Cancel a claim: the donor within the resolution period, the claimer before completion.

    A confirmed portability claim is cancelled by its claimer only for fraud
    or account closure (the donor already gave the key up).
    """

    def __init__(self, *, steps: ClaimSteps) -> None:
        self._steps = steps

    async def __call__(self, cmd: CancelKeyClaimCommand) -> KeyClaim:
        cmd = checked_enums(cmd)  # enum fields given as their values
        if cmd.reason is CancelReason.DEFAULT_OPERATION:
            raise KeyClaimNotAllowed(
                "only the directory cancels for an ended period", field="reason"
            )
        claim = await self._steps.get_visible(cmd.claim_id, cmd.owner_id)
        party = ClaimParty.DONOR if claim.is_donor(cmd.owner_id) else ClaimParty.CLAIMER
        if claim.status is ClaimStatus.CANCELLED and claim.cancelled_by is party:
            return claim  # a replay
        if party is ClaimParty.DONOR and claim.status is ClaimStatus.CONFIRMED:
            if claim.confirmed_by is ClaimParty.DIRECTORY:
                raise _period_ended("resolution", claim)
            raise IllegalKeyClaimTransition(
                "the holder already gave the key up", status="CONFIRMED"
            )
        if (
            party is ClaimParty.CLAIMER
            and claim.status is ClaimStatus.CONFIRMED
            and claim.claim_type is ClaimType.PORTABILITY
            and cmd.reason not in (CancelReason.FRAUD, CancelReason.ACCOUNT_CLOSURE)
        ):
            raise KeyClaimNotAllowed(
                "a confirmed portability is cancelled only for fraud or account closure",
                field="reason",
            )
        if (
            claim.status is ClaimStatus.CANCELLED
            and claim.cancel_reason is CancelReason.DEFAULT_OPERATION
        ):
            raise _period_ended("completion" if claim.confirmed_by else "resolution", claim)
        step = cancelled(claim, party, cmd.reason, self._steps.clock.now())
        try:
            return await self._steps.save(claim, step)
        except KeyClaimVersionConflict:
            again = await self._steps.current(cmd.claim_id)
            if again.status is ClaimStatus.CANCELLED and again.cancelled_by is party:
                return again
            raise


class CompleteKeyClaim:
    """The claimer completes a confirmed claim within the completion period: the key moves.

    The claim is marked ``completing`` (one caller wins; from then on nobody
    cancels it and no period ends it), the key is moved by the directory's
    atomic transfer under the claim's id, and only then is the claim marked
    ``COMPLETED``. A key that cannot move (``PixKeyLimitReached``,
    ``PixKeyAlreadyRegistered``) puts the claim back to ``CONFIRMED``; a
    crash or an outage after the mark leaves it ``completing``, and the next
    touch moves the key (a replayed move finds the registration already
    made) and marks it. The key is never on two accounts and the status
    never says it moved when it did not.
    """

    def __init__(self, *, steps: ClaimSteps) -> None:
        self._steps = steps

    async def __call__(self, cmd: CompleteKeyClaimCommand) -> KeyClaim:
        steps = self._steps
        if cmd.owner_id is None:
            claim = await steps.current(cmd.claim_id)
            if steps.is_ours(claim.claimer.ispb):
                raise KeyClaimNotFound()
        else:
            claim = await steps.get_visible(cmd.claim_id, cmd.owner_id)
            if not claim.is_claimer(cmd.owner_id):
                raise KeyClaimNotAllowed("only the claimer completes a claim", field="claim_id")
        if claim.status is ClaimStatus.COMPLETED:
            return claim  # a replay: the key moved before the claim was marked
        if (
            claim.status is ClaimStatus.CANCELLED
            and claim.cancel_reason is CancelReason.DEFAULT_OPERATION
        ):
            raise _period_ended("completion" if claim.confirmed_by else "resolution", claim)
        if claim.status is not ClaimStatus.CONFIRMED:
            raise IllegalKeyClaimTransition(
                f"a {claim.status.value} claim cannot be completed", status=claim.status.value
            )
        if claim.completing:  # begun by another call, its move not done yet
            return await steps.finish_completion(claim)
        if steps.is_ours(claim.claimer.ispb) and claim.claimer.account_id is not None:
            limit = steps.max_keys(claim.claimer.holder_type)
            held = await steps.directory.list_by_account(claim.claimer.account_id)
            if len(held) >= limit:
                raise PixKeyLimitReached(
                    f"an account of this kind holds at most {limit} keys", max_keys=limit
                )
        try:
            claim = await steps.store.update(completing(claim, steps.clock.now()), claim.version)
        except KeyClaimVersionConflict:
            again = await steps.current(cmd.claim_id)  # finishes a completion begun meanwhile
            if again.status is ClaimStatus.COMPLETED:
                return again
            if again.completing:
                return await steps.finish_completion(again)
            raise
        return await steps.finish_completion(claim)
