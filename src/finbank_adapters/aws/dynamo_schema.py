"""The PIX table on DynamoDB: item layout, key builders, and idempotent table creation.

One table (``settings.pix.table_name``), generic key names so every entity
fits; see :mod:`finbank_adapters.aws.dynamo` for how the repository uses it.

===================  =====================  ================  ==============================
item                 pk                     sk                index keys
===================  =====================  ================  ==============================
payment record       ``PAY#<e2e>``          ``PAY``           (none)
account index item   ``PAY#<e2e>``          ``ACCOUNT#<id>``  gsi1pk ``ACCOUNT#<id>``,
                                                              gsi1sk ``<created_at>#<e2e>``
settlement-day item  ``PAY#<e2e>``          ``DAY#<date>``    gsi2pk ``DAY#<date>``,
                                                              gsi2sk ``<settled_at>#<e2e>``
idempotency item     ``IDEM#<owner>``       ``KEY#<key>``     (none)
effect marker        ``EFFECT#<consumer>``  ``<effect id>``   (none; TTL on ``expires_at``)
PIX key              ``PIXKEY#<type>#<v>``  ``KEY``           (none)
account's key        ``PIXACCT#<account>``  ``KEY#<t>#<id>``  (none)
account key counter  ``PIXACCT#<account>``  ``COUNT``         (none)
key id pointer       ``PIXKEYID#<id>``      ``KEYID``         (none)
charge               ``CHARGE#<txid>``      ``CHARGE``        (none)
charge static txid   ``CHARGESTATIC#<t>``   ``STATIC``        (none)
charge location      ``CHARGELOC#<loc>``    ``LOCATION``      (none)
account limits       ``LIMITS#<account>``   ``LIMITS``        (none)
limit usage counter  ``LIMITUSE#<acct>``    ``USED#<per>``    (none; TTL on ``expires_at``)
limit usage hold     ``LIMITUSE#<acct>``    ``HOLD#<e2e>``    (none; TTL on ``expires_at``)
device first use     ``DEVICE#<owner>``     ``DEVICE#<id>``   (none)
in-flight claim      ``CLAIM#<hash>``       ``CLAIM``         (none; TTL on ``expires_at``)
MED case             ``MED#<e2e>``          ``CASE``          while due: gsi2pk ``MEDDUE#CASE``,
                                                              gsi2sk ``<attention_at>#<e2e>``
precautionary block  ``MED#<e2e>``          ``BLOCK``         while due: gsi2pk
                                                              ``MEDDUE#BLOCK``, gsi2sk
                                                              ``<attention_at>#<e2e>``
===================  =====================  ================  ==============================

The key directory (``dynamo_pix_directory``), charges, limits and devices
(``dynamo_pix_records``) use base-table keys only: no extra index, so
``create_tables`` is the same for them.

* ``GSI1`` (by account) and ``GSI2`` (by settlement day) project keys only:
  the index says *which* records, the record itself is read with a strongly
  consistent ``BatchGetItem``, so a listing never shows a stale version.
* Timestamps in sort keys are UTC, fixed width (``2026-01-05T12:00:00.000000Z``),
  so string order is time order; the ``#<e2e>`` suffix breaks ties.
* The idempotency key is split over pk and sk (``IDEM#<owner>`` / ``KEY#<key>``)
  rather than joined in one string: an owner id or key containing ``#``
  cannot make two different pairs collide.
* Streams carry ``NEW_AND_OLD_IMAGES``; the streams Lambda only cares about
  payment records (``sk = PAY``), which a Lambda event filter can select.
* Effect markers (the Lambda's "already done" log) live in the same table
  and expire through DynamoDB TTL on ``expires_at``.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

PK = "pk"
SK = "sk"
GSI1 = "gsi1"
GSI1_PK = "gsi1pk"
GSI1_SK = "gsi1sk"
GSI2 = "gsi2"
GSI2_PK = "gsi2pk"
GSI2_SK = "gsi2sk"
TTL_ATTRIBUTE = "expires_at"

PAYMENT_SK = "PAY"
PAYMENT_PREFIX = "PAY#"
ACCOUNT_PREFIX = "ACCOUNT#"
DAY_PREFIX = "DAY#"


def payment_pk(end_to_end_id: str) -> str:
    return f"{PAYMENT_PREFIX}{end_to_end_id}"


def account_key(account_id: uuid.UUID) -> str:
    return f"{ACCOUNT_PREFIX}{account_id}"


def day_key(day: date) -> str:
    return f"{DAY_PREFIX}{day.isoformat()}"


def idempotency_pk(owner_id: str) -> str:
    return f"IDEM#{owner_id}"


def idempotency_sk(key: str) -> str:
    return f"KEY#{key}"


KEY_SK = "KEY"
KEY_COUNT_SK = "COUNT"
KEY_ID_SK = "KEYID"
CHARGE_SK = "CHARGE"
CHARGE_STATIC_SK = "STATIC"
CHARGE_LOCATION_SK = "LOCATION"
LIMITS_SK = "LIMITS"


def pix_key_pk(key_type: str, value: str) -> str:
    """A key's item; the type has no ``#``, so everything after the second ``#`` is the value."""
    return f"PIXKEY#{key_type}#{value}"


def key_account_pk(
    account_id: uuid.UUID | None, ispb: str, branch: str, account_number: str
) -> str:
    """The partition of an account's keys: by id, or by ISPB, branch and number elsewhere."""
    if account_id is not None:
        return f"PIXACCT#{account_id}"
    return f"PIXACCT#EXT#{ispb}#{branch}#{account_number}"


def key_account_sk(created_at: datetime, key_id: uuid.UUID) -> str:
    return f"{KEY_SK}#{sortable_time(created_at)}#{key_id}"


def key_id_pk(key_id: uuid.UUID) -> str:
    return f"PIXKEYID#{key_id}"


def charge_pk(txid: str) -> str:
    return f"CHARGE#{txid}"


def charge_static_pk(static_txid: str) -> str:
    return f"CHARGESTATIC#{static_txid}"


def charge_location_pk(location_id: str) -> str:
    return f"CHARGELOC#{location_id}"


def limits_pk(account_id: uuid.UUID) -> str:
    return f"LIMITS#{account_id}"


def limit_usage_pk(account_id: uuid.UUID) -> str:
    return f"LIMITUSE#{account_id}"


def limit_counter_sk(period: str) -> str:
    return f"USED#{period}"


LIMIT_HOLD_PREFIX = "HOLD#"


def limit_hold_sk(hold_id: str) -> str:
    return f"{LIMIT_HOLD_PREFIX}{hold_id}"


def device_pk(owner_id: str) -> str:
    return f"DEVICE#{owner_id}"


def device_sk(device_id: str) -> str:
    return f"DEVICE#{device_id}"


def sortable_time(moment: datetime) -> str:
    """``moment`` in UTC, fixed width: string order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def table_definition(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments: on-demand, two keys-only GSIs, streams with both images."""
    keys_only = {"ProjectionType": "KEYS_ONLY"}
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in (PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK)
        ],
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": GSI1,
                "KeySchema": [
                    {"AttributeName": GSI1_PK, "KeyType": "HASH"},
                    {"AttributeName": GSI1_SK, "KeyType": "RANGE"},
                ],
                "Projection": keys_only,
            },
            {
                "IndexName": GSI2,
                "KeySchema": [
                    {"AttributeName": GSI2_PK, "KeyType": "HASH"},
                    {"AttributeName": GSI2_SK, "KeyType": "RANGE"},
                ],
                "Projection": keys_only,
            },
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


async def create_tables(client: Any, table_name: str, *, wait_seconds: float = 60.0) -> bool:
    """Create the PIX table if it is missing and wait until it is active; True if created.

    Idempotent: an existing table (even one being created by a concurrent
    caller) is left as it is. ``client`` is an open aioboto3 DynamoDB client.
    Time to live on ``expires_at`` is switched on for the effect markers.
    """
    from finbank_adapters.aws.dynamo_errors import dynamo_errors, error_code

    created = False
    with dynamo_errors():
        try:
            await client.create_table(**table_definition(table_name))
            created = True
        except Exception as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
        await _wait_until_active(client, table_name, wait_seconds)
        ttl = await client.describe_time_to_live(TableName=table_name)
        if ttl.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") not in (
            "ENABLED",
            "ENABLING",
        ):
            await client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
    return created


async def _wait_until_active(client: Any, table_name: str, wait_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        described = await client.describe_table(TableName=table_name)
        if described["Table"]["TableStatus"] == "ACTIVE":
            return
        if loop.time() > deadline:
            raise TimeoutError(f"table {table_name} is not active after {wait_seconds} s")
        await asyncio.sleep(0.5)  # polling the control plane; a real table takes seconds


async def stream_arn(client: Any, table_name: str) -> str | None:
    """The table's latest stream ARN (what the Lambda's event source mapping reads)."""
    from finbank_adapters.aws.dynamo_errors import dynamo_errors

    with dynamo_errors():
        described = await client.describe_table(TableName=table_name)
    arn: str | None = described["Table"].get("LatestStreamArn")
    return arn
