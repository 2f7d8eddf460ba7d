"""``bank.pix.claims`` on the memory profile, both directions with the sandbox's peer bank."""

from __future__ import annotations

from finbank import open_bank
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER, PEER_KEY_EMAIL
from finbank_core.accounts import OpenAccountCommand
from finbank_core.pix.claims import ClaimParty, ClaimStatus, ClaimType
from finbank_core.pix.claims.events import KEY_CLAIM_COMPLETED
from finbank_core.pix.claims.use_cases import (
    CompleteKeyClaimCommand,
    ConfirmKeyClaimCommand,
    GetKeyClaimQuery,
    OpenKeyClaimCommand,
)
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.use_cases import ListPixKeysQuery, RegisterPixKeyCommand

CARLA_CPF = "52998224725"  # the sandbox peer's account holder


async def test_portability_of_a_key_held_at_the_peer_bank() -> None:
    async with open_bank(profile="memory") as bank:
        carla = await bank.accounts.open(
            OpenAccountCommand(owner_id="carla", holder_name="Carla", holder_document=CARLA_CPF)
        )
        claim = await bank.pix.claims.open(
            OpenKeyClaimCommand(
                owner_id="carla",
                account_id=carla.id,
                claim_type=ClaimType.PORTABILITY,
                key_type=PixKeyType.EMAIL,
                key=PEER_KEY_EMAIL,
            )
        )
        query = GetKeyClaimQuery(owner_id="carla", claim_id=claim.id)
        assert (await bank.pix.claims.get(query)).status is ClaimStatus.WAITING_RESOLUTION
        await bank.pix.claims.simulate_donor_answer(claim.id, "CONFIRM")
        confirmed = await bank.pix.claims.get(query)
        assert (confirmed.status, confirmed.confirmed_by) == (
            ClaimStatus.CONFIRMED,
            ClaimParty.DONOR,
        )
        await bank.pix.claims.complete(CompleteKeyClaimCommand(owner_id="carla", claim_id=claim.id))
        [key] = await bank.pix.list_keys(ListPixKeysQuery(owner_id="carla"))
        assert key.key == PixKey.parse(PEER_KEY_EMAIL)
        assert key.account_id == carla.id


async def test_the_peer_bank_claims_a_key_of_ours() -> None:
    async with open_bank(profile="memory") as bank:
        ana = await bank.accounts.open(OpenAccountCommand(owner_id="ana", holder_name="Ana"))
        await bank.pix.register_key(
            RegisterPixKeyCommand(
                owner_id="ana", account_id=ana.id, key_type=PixKeyType.EMAIL, key="ana@example.com"
            )
        )
        claim = await bank.pix.claims.simulate_incoming_claim(
            claim_type=ClaimType.OWNERSHIP,
            key=PixKey.parse("ana@example.com"),
            from_ispb=bank.settings.pix.sandbox_peer_ispb,
            from_account_number=PEER_ACCOUNT_NUMBER,
        )
        assert claim.status is ClaimStatus.WAITING_RESOLUTION
        assert claim.is_donor("ana")
        await bank.pix.claims.confirm(ConfirmKeyClaimCommand(owner_id="ana", claim_id=claim.id))
        done = await bank.pix.claims.simulate_peer_completion(claim.id)
        assert done.status is ClaimStatus.COMPLETED
        assert await bank.pix.list_keys(ListPixKeysQuery(owner_id="ana")) == []
        events = bank.container.events().publisher().published
        assert [e.type for e in events].count(KEY_CLAIM_COMPLETED) == 1
