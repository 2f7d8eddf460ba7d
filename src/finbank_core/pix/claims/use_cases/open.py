"""Opening a claim: our customer claims a key (we are the claimer), or another
institution claims a key one of our customers holds (we are the donor)."""

from __future__ import annotations

import contextlib
import uuid

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.claims.errors import (
    KeyClaimAlreadyOpen,
    KeyClaimNotAllowed,
    KeyClaimNotFound,
)
from finbank_core.pix.claims.model import (
    CLAIMABLE_KEY_TYPES,
    CancelReason,
    ClaimAccount,
    ClaimParty,
    ClaimStatus,
    ClaimType,
    KeyClaim,
    acknowledged,
    cancelled,
)
from finbank_core.pix.claims.use_cases.steps import ClaimSteps
from finbank_core.pix.codes.documents import normalize_cnpj, normalize_cpf
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import KeyRegistration
from finbank_core.pix.errors import PixKeyLimitReached, PixKeyNotFound
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import checked_enums


class OpenKeyClaimCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    account_id: uuid.UUID
    claim_type: ClaimType
    key_type: PixKeyType
    #: the key as typed (personal data)
    key: str

    def __repr__(self) -> str:
        return (
            f"OpenKeyClaimCommand(owner_id={self.owner_id!r}, account_id={self.account_id!r}, "
            f"claim_type={self.claim_type.value}, key_type={self.key_type.value})"
        )


class ReceiveKeyClaimCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A claim another institution opened on a key held here (from the network)."""

    claim_id: uuid.UUID
    claim_type: ClaimType
    key: PixKey
    claimer: ClaimAccount


def _same_holder(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False

    def bare(document: str) -> str:
        digits = "".join(ch for ch in document if ch.isalnum()).upper()
        return normalize_cpf(digits) if len(digits) == 11 else normalize_cnpj(digits)

    try:
        return bare(a) == bare(b)
    except Exception:  # a malformed stored document: not the same holder
        return False


def check_claim(
    claim_type: ClaimType, key: PixKey, registration: KeyRegistration, claimer_document: str | None
) -> None:
    """The directory's rules on who may open which claim on which key."""
    if key.type not in CLAIMABLE_KEY_TYPES[claim_type]:
        raise KeyClaimNotAllowed(
            f"a {key.type.value} key cannot be the subject of a {claim_type.value} claim",
            field="key_type",
        )
    same = _same_holder(registration.holder_document, claimer_document)
    if claim_type is ClaimType.PORTABILITY and not same:
        raise KeyClaimNotAllowed(
            "portability moves a key between accounts of the same holder; "
            "claim ownership of a phone or email key instead",
            field="claim_type",
        )
    if claim_type is ClaimType.OWNERSHIP and same:
        raise KeyClaimNotAllowed(
            "the key is already the holder's: ask for portability instead", field="claim_type"
        )


class OpenKeyClaim:
    """Our customer claims a key held by another account (here or at another institution).

    The claim is stored ``OPEN`` (at most one active claim per key), sent to
    the donor's institution (or, donor here, acknowledged at once) and moves
    to ``WAITING_RESOLUTION``: the resolution period runs from the opening.
    """

    def __init__(self, *, steps: ClaimSteps, accounts: AccountRepository, ids: IdGenerator) -> None:
        self._steps = steps
        self._accounts = accounts
        self._ids = ids

    async def __call__(self, cmd: OpenKeyClaimCommand) -> KeyClaim:
        cmd = checked_enums(cmd)  # enum fields given as their values
        steps = self._steps
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        key = PixKey.parse(cmd.key, cmd.key_type)
        try:
            registration = await steps.directory.get(key)
        except PixKeyNotFound:
            raise KeyClaimNotAllowed(
                "the key is not registered anywhere; register it instead", field="key"
            ) from None
        if registration.account_id == account.id:
            raise KeyClaimNotAllowed("the key is already on this account", field="key")
        check_claim(cmd.claim_type, key, registration, account.holder_document)
        limit = steps.max_keys(account.holder_type)
        if len(await steps.directory.list_by_account(account.id)) >= limit:
            raise PixKeyLimitReached(
                f"an account of this kind holds at most {limit} keys", max_keys=limit
            )
        now = steps.clock.now()
        resolution, completion = steps.settings.periods(now)
        claim = KeyClaim(
            id=self._ids.new_id(),
            claim_type=cmd.claim_type,
            key=key,
            status=ClaimStatus.OPEN,
            claimer=ClaimAccount(
                ispb=steps.ispb,
                branch=account.branch,
                account_number=account.number,
                account_kind=account.kind,
                holder_type=account.holder_type,
                holder_name=account.holder_name,
                holder_document=account.holder_document,
                account_id=account.id,
                owner_id=account.owner_id,
            ),
            donor=ClaimAccount.of_registration(registration),
            donor_key_id=registration.id,
            opened_at=now,
            resolution_ends_at=resolution,
            completion_ends_at=completion,
            updated_at=now,
        )
        stored = await steps.add(claim)
        if not steps.is_ours(stored.donor.ispb):
            try:
                await steps.network.open_claim(stored)
            except Exception:
                # not sent: withdraw it so that the key is free for a new claim
                withdrawn = cancelled(
                    stored, ClaimParty.CLAIMER, CancelReason.DEFAULT_OPERATION, steps.clock.now()
                )
                with contextlib.suppress(Exception):  # else its resolution period ends it
                    await steps.save(stored, withdrawn)
                raise
        return await steps.save(stored, acknowledged(stored, steps.clock.now()))


class ReceiveKeyClaim:
    """Another institution's claim on a key one of our customers holds: we are the donor.

    Recorded and acknowledged (``WAITING_RESOLUTION``); our customer then
    confirms or cancels within the resolution period. Receiving the same
    claim again answers the stored one.
    """

    def __init__(self, *, steps: ClaimSteps) -> None:
        self._steps = steps

    async def __call__(self, cmd: ReceiveKeyClaimCommand) -> KeyClaim:
        cmd = checked_enums(cmd)  # enum fields given as their values
        steps = self._steps
        try:
            return await steps.current(cmd.claim_id)
        except KeyClaimNotFound:
            pass
        try:
            registration = await steps.directory.get(cmd.key)
        except PixKeyNotFound:
            raise KeyClaimNotAllowed("no such key here", field="key") from None
        if not steps.is_ours(registration.ispb) or registration.owner_id is None:
            raise KeyClaimNotAllowed("the key is not held at this institution", field="key")
        if steps.is_ours(cmd.claimer.ispb):
            raise KeyClaimNotAllowed(
                "a claim from this institution is opened here", field="claimer"
            )
        check_claim(cmd.claim_type, cmd.key, registration, cmd.claimer.holder_document)
        now = steps.clock.now()
        resolution, completion = steps.settings.periods(now)
        claim = KeyClaim(
            id=cmd.claim_id,
            claim_type=cmd.claim_type,
            key=cmd.key,
            status=ClaimStatus.OPEN,
            claimer=cmd.claimer,
            donor=ClaimAccount.of_registration(registration),
            donor_key_id=registration.id,
            opened_at=now,
            resolution_ends_at=resolution,
            completion_ends_at=completion,
            updated_at=now,
        )
        try:
            stored = await steps.add(claim)
        except KeyClaimAlreadyOpen:
            try:  # the same claim received twice at once: answer the stored one
                return await steps.current(cmd.claim_id)
            except KeyClaimNotFound:
                raise KeyClaimAlreadyOpen("the key already has an active claim") from None
        return await steps.save(stored, acknowledged(stored, steps.clock.now()))
