"""Deleting a PIX key with an active claim over HTTP: a 409 problem, the key kept.

On the memory and local profiles (PostgreSQL for the PIX stores and the
outbox, so there the claim and its events are also written in one
transaction), through the same fixture as the claims' HTTP tests.
"""

from __future__ import annotations

from tests.e2e.test_pix_claims_http import EMAIL, Api, _holder_and_claimer, _open, api

__all__ = ["api"]  # fixture


async def test_a_key_under_an_active_claim_is_not_deleted(api: Api) -> None:
    alice, alice_account, bob, bob_account = await _holder_and_claimer(api)
    claim = await _open(api, bob, bob_account)
    [key] = (await api.client.get("/v1/pix/keys", headers=alice)).json()
    refused = await api.client.delete(f"/v1/pix/keys/{key['id']}", headers=alice)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "pix_key_under_claim"
    assert problem["field"] == "key_id"
    assert EMAIL not in refused.text  # the key is personal data: never in a problem
    [kept] = (await api.client.get("/v1/pix/keys", headers=alice)).json()
    assert (kept["id"], kept["account_id"]) == (key["id"], alice_account)
    # the holder contests the claim; the key is theirs to delete again
    cancelled = await api.client.post(
        f"/v1/pix/claims/{claim['id']}/cancel", json={}, headers=alice
    )
    assert cancelled.status_code == 200, cancelled.text
    deleted = await api.client.delete(f"/v1/pix/keys/{key['id']}", headers=alice)
    assert deleted.status_code == 200, deleted.text
    assert (await api.client.get("/v1/pix/keys", headers=alice)).json() == []


async def test_the_openapi_document_names_the_409_of_a_key_deletion(api: Api) -> None:
    document = (await api.client.get("/schema/openapi.json")).json()
    responses = document["paths"]["/v1/pix/keys/{key_id}"]["delete"]["responses"]
    assert "409" in responses
