"""Looking a key up before paying it, within the customer's look-up bucket."""

from __future__ import annotations

import uuid

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.claims.errors import KeyLookupRateLimited
from finbank_core.pix.claims.lookups import LookupLimitSettings
from finbank_core.pix.claims.ports import LookupBuckets
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import DirectoryEntry
from finbank_core.pix.errors import PixKeyNotFound
from finbank_core.pix.ports import KeyDirectory
from finbank_core.shared.clock import Clock
from finbank_core.shared.inputs import checked_enums


class LookupPixKeyCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    #: the account that would pay (its holder type picks the bucket's size)
    account_id: uuid.UUID
    #: the key as typed (personal data)
    key: str
    key_type: PixKeyType | None = None

    def __repr__(self) -> str:
        return f"LookupPixKeyCommand(owner_id={self.owner_id!r}, account_id={self.account_id!r})"


class LookupPixKey:
    """The masked directory entry of a key, charged to the customer's bucket.

    The bucket must hold a token; the look-up then costs
    ``found_cost`` (1) or, for a key that does not exist, ``not_found_cost``
    (20). An empty bucket raises ``KeyLookupRateLimited`` with
    ``retry_after_seconds`` and looks nothing up.
    """

    def __init__(
        self,
        *,
        accounts: AccountRepository,
        directory: KeyDirectory,
        buckets: LookupBuckets,
        clock: Clock,
        settings: LookupLimitSettings | None = None,
    ) -> None:
        self._accounts = accounts
        self._directory = directory
        self._buckets = buckets
        self._clock = clock
        self._settings = settings or LookupLimitSettings()

    async def __call__(self, cmd: LookupPixKeyCommand) -> DirectoryEntry:
        cmd = checked_enums(cmd)  # enum fields given as their values
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        key = PixKey.parse(cmd.key, cmd.key_type)
        policy = self._settings.policy(account.holder_type)
        bucket = f"lookup:{cmd.owner_id}"
        took = await self._buckets.take(
            bucket, self._settings.found_cost, policy, self._clock.now()
        )
        if not took.allowed:
            raise KeyLookupRateLimited(
                "too many key look-ups; retry later",
                retry_after_seconds=took.retry_after_seconds,
            )
        try:
            return await self._directory.lookup(key)
        except PixKeyNotFound:
            penalty = self._settings.not_found_cost - self._settings.found_cost
            if penalty > 0:
                await self._buckets.take(bucket, penalty, policy, self._clock.now())
            raise
