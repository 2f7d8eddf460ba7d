"""Registering, listing and deleting a customer's PIX keys."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import msgspec

from finbank_core.accounts.access import owned_account, owned_active_account
from finbank_core.accounts.model import CustomerAccount
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.codes.documents import normalize_cnpj, normalize_cpf
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.directory import (
    MAX_KEYS_COMPANY,
    MAX_KEYS_INDIVIDUAL,
    KeyRegistration,
    NewKeyRegistration,
    max_keys_for,
)
from finbank_core.pix.errors import InvalidPixKey, PixKeyNotOwned
from finbank_core.pix.events import KEY_DELETED, KEY_REGISTERED
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.pix.ports import KeyDirectory
from finbank_core.shared.clock import Clock
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.inputs import check_text, checked_enums
from finbank_core.shared.privacy import masked_repr

if TYPE_CHECKING:
    from finbank_core.pix.claims.ports import KeyClaimStore


class RegisterPixKeyCommand(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str
    account_id: uuid.UUID
    key_type: PixKeyType
    #: the key as typed; must be absent for an EVP (the directory issues it)
    key: str | None = None

    __repr__ = masked_repr("key")


class RegisterPixKey:
    """Bind a key to one of the caller's active accounts.

    A CPF or CNPJ key must be the holder's own document. Phone and email
    ownership is proven outside (a code sent by the directory); not modelled.
    """

    def __init__(
        self,
        *,
        ispb: str,
        accounts: AccountRepository,
        directory: KeyDirectory,
        events: PixEvents,
        clock: Clock,
        ids: IdGenerator,
        max_keys_individual: int = MAX_KEYS_INDIVIDUAL,
        max_keys_company: int = MAX_KEYS_COMPANY,
    ) -> None:
        self._ispb = ispb
        self._accounts = accounts
        self._directory = directory
        self._events = events
        self._clock = clock
        self._ids = ids
        self._max_individual = max_keys_individual
        self._max_company = max_keys_company

    async def __call__(self, cmd: RegisterPixKeyCommand) -> KeyRegistration:
        cmd = checked_enums(cmd)  # enum fields given as their values
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        key: PixKey | None = None
        if cmd.key_type is PixKeyType.EVP:
            if cmd.key:
                raise InvalidPixKey("random keys (EVP) are issued by the directory; send no key")
        else:
            key = PixKey.parse(cmd.key or "", cmd.key_type)
            if key.type in (PixKeyType.CPF, PixKeyType.CNPJ) and not _is_holders(account, key):
                raise PixKeyNotOwned("a CPF or CNPJ key must be the account holder's document")
        registration = await self._directory.register(
            NewKeyRegistration(
                id=self._ids.new_id(),
                key_type=cmd.key_type,
                key=key,
                ispb=self._ispb,
                branch=account.branch,
                account_number=account.number,
                account_kind=account.kind,
                holder_type=account.holder_type,
                holder_name=account.holder_name,
                holder_document=account.holder_document,
                created_at=self._clock.now(),
                account_id=account.id,
                owner_id=account.owner_id,
            ),
            max_keys_per_account=max_keys_for(
                account.holder_type, individual=self._max_individual, company=self._max_company
            ),
        )
        await self._events.publish(
            KEY_REGISTERED,
            str(account.id),
            {"key_id": str(registration.id), "key_type": registration.key.type.value},
        )
        return registration


def _is_holders(account: CustomerAccount, key: PixKey) -> bool:
    document = account.holder_document
    if not document:
        return False
    bare = normalize_cpf(document) if key.type is PixKeyType.CPF else normalize_cnpj(document)
    return bare == key.value


class DeletePixKeyCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Remove one of the caller's keys, by its registration id."""

    owner_id: str
    key_id: uuid.UUID


class ListPixKeysQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The caller's keys: of one account, or of all of them when ``account_id`` is ``None``."""

    owner_id: str
    account_id: uuid.UUID | None = None


class DeletePixKey:
    """Remove one of the caller's keys (``PixKeyNotFound`` for anyone else's).

    With ``claims`` (and ``accounts`` to find the key), a key with an active
    claim is refused with ``PixKeyUnderClaim`` and stays registered: the
    claim decides where it goes.
    """

    def __init__(
        self,
        *,
        directory: KeyDirectory,
        events: PixEvents,
        accounts: AccountRepository | None = None,
        claims: KeyClaimStore | None = None,
    ) -> None:
        self._directory = directory
        self._events = events
        self._accounts = accounts
        self._claims = claims

    async def _refuse_if_claimed(self, cmd: DeletePixKeyCommand) -> None:
        if self._claims is None or self._accounts is None:
            return
        from finbank_core.pix.claims.errors import PixKeyUnderClaim

        for account in await self._accounts.list_by_owner(cmd.owner_id):
            for registration in await self._directory.list_by_account(account.id):
                if registration.id != cmd.key_id:
                    continue
                claim = await self._claims.active_for_key(registration.key)
                if claim is not None:
                    raise PixKeyUnderClaim(
                        "the key has an active claim: confirm or cancel it first",
                        field="key_id",
                        claim_id=str(claim.id),
                        status=claim.status.value,
                    )
                return

    async def __call__(self, cmd: DeletePixKeyCommand) -> KeyRegistration:
        check_text(cmd.owner_id, field="owner_id", name="owner id")  # the store is asked by it
        await self._refuse_if_claimed(cmd)
        removed = await self._directory.delete(cmd.key_id, cmd.owner_id)
        await self._events.publish(
            KEY_DELETED,
            str(removed.account_id),
            {"key_id": str(removed.id), "key_type": removed.key.type.value},
        )
        return removed


class ListPixKeys:
    """The caller's keys, of one account or of all of them."""

    def __init__(self, accounts: AccountRepository, directory: KeyDirectory) -> None:
        self._accounts = accounts
        self._directory = directory

    async def __call__(self, query: ListPixKeysQuery) -> list[KeyRegistration]:
        check_text(query.owner_id, field="owner_id", name="owner id")  # the store is asked by it
        if query.account_id is not None:
            await owned_account(self._accounts, query.owner_id, query.account_id)
            return await self._directory.list_by_account(query.account_id)
        keys: list[KeyRegistration] = []
        for account in await self._accounts.list_by_owner(query.owner_id):
            keys.extend(await self._directory.list_by_account(account.id))
        return keys
