"""``finbank doctor``: is this profile's configuration complete, and is everything it names
reachable and ready? Prints one line per check and, for each problem, how to fix it.

Checks only what the settings use: PostgreSQL (reachable, every migration applied,
none changed since; the server keeps a committed transfer through a crash, and
vacuums), Redis, the Kafka broker and the topics, the DynamoDB table
(its indexes and the ``NEW_AND_OLD_IMAGES`` stream), the S3 bucket of the files,
the Secrets Manager secret, and settings that parse but cannot work together (a
missing JWT secret, Cognito without its pool, a relay lease shorter than the
Kafka timeout). Every probe has a timeout. Nothing is written; secrets, DSNs and
URLs are never printed (hosts and ports only).

Exit code 0 when every check passed (skipped ones and warnings do not count), 1
otherwise.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

from finbank_adapters.settings import Settings, SettingsError


class Status(enum.StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"
    WARN = "warn"  # works now, degrades with time: reported, the exit code stays 0


@dataclass(frozen=True)
class Check:
    """One line of the report: what, how it went, and how to fix it when it did not."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def where(url: str) -> str:
    """``host:port`` of a DSN or URL: never its user, password or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "(unparsable)"


def _error(exc: BaseException) -> str:
    """An error for the report: its class, and the message of our own errors (which never
    carry secrets); a driver's message may echo a DSN, so only its class is shown."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, SettingsError):  # KafkaConfigError too
        return str(exc)
    return type(exc).__name__


# -- the checks ---------------------------------------------------------------------------


def check_settings(settings: Settings) -> list[Check]:
    """Settings that parse but cannot work together."""
    checks: list[Check] = []
    problems: list[tuple[str, str]] = []
    if settings.backends.identity == "local":
        try:
            secret = settings.jwt_secret_bytes()
        except SettingsError as exc:
            problems.append(
                (str(exc), "set FINBANK_JWT_SECRET (32 bytes or more), e.g. from the secret")
            )
        else:
            if settings.jwt.secret and len(secret) < 32:
                problems.append(
                    (
                        "FINBANK_JWT_SECRET is shorter than 32 bytes",
                        "use a random value of 32 bytes or more",
                    )
                )
    if settings.backends.identity == "cognito":
        try:
            settings.require_cognito()
        except SettingsError as exc:
            problems.append((str(exc), "set them from the Terraform outputs cognito_*"))
    if settings.backends.events == "postgres":
        try:
            from finbank_adapters.kafka.config import KafkaConfigError, KafkaSettings
            from finbank_adapters.kafka.relay import check_relay_settings
        except ImportError:
            problems.append(("the kafka extra is missing", "pip install 'finbank[kafka]'"))
        else:
            kafka = KafkaSettings.from_settings(settings)
            try:
                check_relay_settings(settings, kafka)
            except SettingsError as exc:
                problems.append((str(exc), "raise FINBANK_RELAY_LEASE_SECONDS"))
            try:
                kafka.producer_config()  # the client's settings, and the producer's acks
            except KafkaConfigError as exc:
                problems.append(
                    (str(exc), "set the FINBANK_KAFKA_* settings it names (docs/configuration.md)")
                )
    if settings.backends.files == "s3" and not settings.files.s3_bucket:
        problems.append(
            ("FINBANK_FILES_BACKEND=s3 without a bucket", "set FINBANK_FILES_S3_BUCKET")
        )
    for detail, fix in problems:
        checks.append(Check("settings", Status.FAIL, detail, fix))
    if not problems:
        checks.append(Check("settings", Status.OK, f"profile {settings.profile.value}"))
    return checks


async def check_postgres(settings: Settings) -> Check:
    from finbank_adapters.postgres_wiring import uses_postgres

    if not uses_postgres(settings):
        return Check("postgres", Status.SKIP, "no port uses PostgreSQL")
    import asyncpg

    from finbank_adapters.postgres.migrations import VERSIONS_TABLE, load_migrations

    at = where(settings.postgres.dsn)
    try:
        conn = await asyncpg.connect(settings.postgres.dsn, timeout=5)
    except Exception as exc:
        return Check(
            "postgres",
            Status.FAIL,
            f"cannot connect to {at}: {_error(exc)}",
            "check FINBANK_POSTGRES_DSN and that the server runs and admits this host",
        )
    try:
        table = await conn.fetchval("SELECT to_regclass($1)", VERSIONS_TABLE)
        applied: dict[str, str] = {}
        if table is not None:
            rows = await conn.fetch(f"SELECT version, checksum FROM {VERSIONS_TABLE}")  # noqa: S608
            applied = {row["version"]: row["checksum"] for row in rows}
    finally:
        await conn.close()
    migrations = load_migrations()
    missing = [m.version for m in migrations if m.version not in applied]
    changed = [m.version for m in migrations if applied.get(m.version, m.checksum) != m.checksum]
    if changed:
        return Check(
            "postgres",
            Status.FAIL,
            f"{at}: migrations {', '.join(changed)} changed after they were applied",
            "restore the released migration files; never edit an applied migration",
        )
    if missing:
        return Check(
            "postgres",
            Status.FAIL,
            f"{at}: {len(missing)} of {len(migrations)} migrations not applied"
            f" ({missing[0]}..{missing[-1]})",
            "run `finbank db migrate`",
        )
    return Check("postgres", Status.OK, f"{at}: {len(migrations)} migrations applied")


#: synchronous_commit's values with which a commit returns only once its WAL is on disk
_DURABLE_COMMITS = ("on", "local", "remote_write", "remote_apply")


async def check_postgres_server(settings: Settings) -> list[Check]:
    """The server's own settings that the ledger depends on: a commit the service answered
    must survive a crash (``fsync``, ``full_page_writes``, ``synchronous_commit``, as the
    service's own sessions see them), and dead rows must be vacuumed (``autovacuum``)."""
    from finbank_adapters.postgres_wiring import uses_postgres

    if not uses_postgres(settings):
        return []
    import asyncpg

    at = where(settings.postgres.dsn)
    try:
        conn = await asyncpg.connect(settings.postgres.dsn, timeout=5)
    except Exception:  # check_postgres reports it, with its fix
        return [Check("postgres-server", Status.SKIP, f"{at} cannot be reached")]
    try:
        found = await conn.fetchrow(
            "SELECT current_setting('fsync') AS fsync,"
            " current_setting('full_page_writes') AS full_page_writes,"
            " current_setting('synchronous_commit') AS synchronous_commit,"
            " current_setting('autovacuum') AS autovacuum,"
            " to_regproc('aurora_version') IS NOT NULL AS aurora"
        )
    finally:
        await conn.close()
    row = dict(found or {})
    lost: list[str] = []
    if not row["aurora"]:  # Aurora's storage writes and checksums pages itself
        lost += [
            f"{name}={row[name]}" for name in ("fsync", "full_page_writes") if row[name] != "on"
        ]
    if row["synchronous_commit"] not in _DURABLE_COMMITS:
        lost.append(f"synchronous_commit={row['synchronous_commit']}")
    checks = [
        Check(
            "postgres-durability",
            Status.FAIL,
            f"{at}: {', '.join(lost)}: a transfer the service answered as made can be lost in"
            " a crash, even after its event was published",
            "set synchronous_commit=on for the service's role or database (ALTER ROLE ... SET"
            " synchronous_commit = on), and fsync and full_page_writes on in postgresql.conf",
        )
        if lost
        else Check(
            "postgres-durability",
            Status.OK,
            f"{at}: commits are on disk before they are answered"
            f" (synchronous_commit={row['synchronous_commit']})",
        )
    ]
    checks.append(
        Check(
            "postgres-vacuum",
            Status.WARN,
            f"{at}: autovacuum is off: the accounts' balance rows (updated by every transfer)"
            " and the outbox (a row written and deleted per event) grow until someone runs"
            " VACUUM, and every transfer slows with them",
            "set autovacuum=on in postgresql.conf, or run VACUUM (ANALYZE) on a schedule",
        )
        if row["autovacuum"] != "on"
        else Check("postgres-vacuum", Status.OK, f"{at}: autovacuum is on")
    )
    return checks


async def check_redis(settings: Settings) -> Check:
    if not settings.uses_redis():
        return Check("redis", Status.SKIP, "no port uses Redis")
    import redis.asyncio as redis

    at = where(settings.redis.url)
    client = redis.from_url(settings.redis.url, socket_timeout=5, socket_connect_timeout=5)
    try:
        await client.ping()
    except Exception as exc:
        return Check(
            "redis",
            Status.FAIL,
            f"no answer from {at}: {_error(exc)}",
            "check FINBANK_REDIS_URL (rediss:// for TLS) and the AUTH token, and that Redis runs",
        )
    finally:
        await client.aclose()
    return Check("redis", Status.OK, f"{at} answers PING")


async def check_kafka(settings: Settings) -> Check:
    if settings.backends.events != "postgres":
        return Check("kafka", Status.SKIP, "events stay in process (no relay, no worker)")
    from aiokafka.admin import AIOKafkaAdminClient

    from finbank_adapters.kafka.config import KafkaConfigError, KafkaSettings
    from finbank_adapters.kafka.consumer import dead_letter_topic
    from finbank_core.shared.events import AUTH_TOPIC, LEDGER_TOPIC, PIX_TOPIC

    kafka = KafkaSettings.from_settings(settings)
    try:
        config = kafka.client_config()
    except KafkaConfigError as exc:  # the settings check names it and its fix
        return Check("kafka", Status.SKIP, f"not probed: {exc}")
    admin = AIOKafkaAdminClient(**{**config, "request_timeout_ms": 5000})
    try:
        await asyncio.wait_for(admin.start(), 10)
        topics = set(await asyncio.wait_for(admin.list_topics(), 10))
    except Exception as exc:
        return Check(
            "kafka",
            Status.FAIL,
            f"no broker answers at {kafka.bootstrap_servers}: {_error(exc)}",
            "check FINBANK_KAFKA_BOOTSTRAP and the SASL settings; locally run `finbank dev up`",
        )
    finally:
        await admin.close()
    wanted = [kafka.topic(t) for t in (PIX_TOPIC, LEDGER_TOPIC, AUTH_TOPIC)]
    missing = [t for t in wanted if t not in topics]
    if missing:
        return Check(
            "kafka",
            Status.FAIL,
            f"topics missing: {', '.join(missing)}",
            "create them (and their .dlq topics) with replication 3; topic auto-creation is"
            " off on MSK (docs/operations.md, Deploy)",
        )
    dlq = dead_letter_topic(kafka.topic(PIX_TOPIC))
    note = "" if dlq in topics else f"; {dlq} not created yet (made on the first dead letter)"
    return Check("kafka", Status.OK, f"{len(wanted)} topics present{note}")


async def check_dynamodb(settings: Settings) -> Check:
    from finbank_adapters.aws_wiring import open_dynamodb_client, uses_dynamodb

    if not uses_dynamodb(settings):
        return Check("dynamodb", Status.SKIP, "PIX records are not on DynamoDB")
    table = settings.pix.table_name
    try:
        async with open_dynamodb_client(settings) as client:
            described = await asyncio.wait_for(client.describe_table(TableName=table), 10)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return Check(
                "dynamodb",
                Status.FAIL,
                f"table {table} does not exist",
                "run `finbank aws bootstrap` (locally) or apply deploy/terraform",
            )
        return Check(
            "dynamodb",
            Status.FAIL,
            f"cannot describe table {table}: {code or _error(exc)}",
            "check FINBANK_AWS_REGION, FINBANK_AWS_ENDPOINT_URL and the role's permissions",
        )
    info = described["Table"]
    indexes = {i["IndexName"] for i in info.get("GlobalSecondaryIndexes", [])}
    stream = info.get("StreamSpecification", {})
    problems = []
    if not {"gsi1", "gsi2"} <= indexes:
        problems.append(f"indexes {sorted({'gsi1', 'gsi2'} - indexes)} missing")
    if not stream.get("StreamEnabled") or stream.get("StreamViewType") != "NEW_AND_OLD_IMAGES":
        problems.append(
            f"stream view is {stream.get('StreamViewType', 'off')}, the stream Lambda needs"
            " NEW_AND_OLD_IMAGES"
        )
    if problems:
        return Check(
            "dynamodb",
            Status.FAIL,
            f"table {table}: {'; '.join(problems)}",
            "recreate it with `finbank aws bootstrap` or fix deploy/terraform/modules/dynamodb",
        )
    return Check("dynamodb", Status.OK, f"table {table}: indexes and NEW_AND_OLD_IMAGES stream")


async def check_s3(settings: Settings) -> Check:
    if settings.backends.files != "s3":
        return Check("s3", Status.SKIP, f"files are on the {settings.backends.files} store")
    if not settings.files.s3_bucket:
        return Check("s3", Status.SKIP, "no bucket set (see settings)")
    import aioboto3

    bucket = settings.files.s3_bucket
    try:
        async with aioboto3.Session().client(
            "s3", region_name=settings.aws.region, endpoint_url=settings.aws.endpoint_url or None
        ) as client:
            await asyncio.wait_for(client.head_bucket(Bucket=bucket), 10)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") or _error(exc)
        return Check(
            "s3",
            Status.FAIL,
            f"bucket {bucket}: {code}",
            "check FINBANK_FILES_S3_BUCKET and that the role may read it (s3:ListBucket)",
        )
    return Check("s3", Status.OK, f"bucket {bucket} reachable")


#: the variable ``finbank_adapters.aws.secrets`` reads (named here: that module needs ``[aws]``)
SECRET_ID_ENV = "FINBANK_SECRETS_ID"  # noqa: S105 - the variable's name, not a secret


async def check_secret(settings: Settings, environ: dict[str, str]) -> Check:
    """Skipped when no secret is named (off the aws profile), so it needs no extra then."""
    secret_id = environ.get(SECRET_ID_ENV, "")
    if not secret_id:
        if settings.profile.value == "aws":
            return Check(
                "secret",
                Status.FAIL,
                f"{SECRET_ID_ENV} is not set on the aws profile",
                "set it to the Terraform output app_secret_arn",
            )
        return Check("secret", Status.SKIP, f"{SECRET_ID_ENV} not set")
    from finbank_adapters.aws.secrets import secrets_manager_loader
    from finbank_adapters.system import SystemClock

    try:
        async with secrets_manager_loader(settings, SystemClock(), secret_id) as loader:
            values = await asyncio.wait_for(loader.values(), 10)
    except Exception as exc:
        return Check(
            "secret",
            Status.FAIL,
            f"cannot read {secret_id}: {_error(exc)}",
            "check the secret's name and that the role may call secretsmanager:GetSecretValue",
        )
    return Check("secret", Status.OK, f"{secret_id}: {len(values)} values")


# -- the command --------------------------------------------------------------------------

Probe = Callable[[], Awaitable[Check | list[Check]]]


async def run_checks(settings: Settings, environ: dict[str, str] | None = None) -> list[Check]:
    """Every check for ``settings``; probes that need a missing extra report it."""
    env = dict(os.environ if environ is None else environ)
    checks = check_settings(settings)
    probes: list[tuple[str, Probe, str]] = [
        ("postgres", lambda: check_postgres(settings), "postgres"),
        ("postgres-server", lambda: check_postgres_server(settings), "postgres"),
        ("redis", lambda: check_redis(settings), "redis"),
        ("kafka", lambda: check_kafka(settings), "kafka"),
        ("dynamodb", lambda: check_dynamodb(settings), "aws"),
        ("s3", lambda: check_s3(settings), "aws"),
        ("secret", lambda: check_secret(settings, env), "aws"),
    ]
    for name, probe, extra in probes:
        try:
            found = await probe()
            checks.extend(found if isinstance(found, list) else [found])
        except ImportError:
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    "its driver is not installed",
                    f"pip install 'finbank[{extra}]'",
                )
            )
        except Exception as exc:  # a report, never a traceback: the rest still run
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    f"the check could not run: {_error(exc)}",
                    "check this dependency's FINBANK_* settings (docs/configuration.md)",
                )
            )
    return checks


def report(checks: list[Check], out: IO[str]) -> int:
    """Print the checks; the exit code (1 when one failed)."""
    width = max(len(c.name) for c in checks)
    for check in checks:
        out.write(f"{check.status.value:>4}  {check.name:<{width}}  {check.detail}\n")
        if check.fix:
            out.write(f"      {'':<{width}}  fix: {check.fix}\n")
    failed = [c for c in checks if c.status is Status.FAIL]
    summary = f"{len(failed)} problem(s)" if failed else "everything this profile uses is ready"
    out.write(f"finbank doctor: {summary}\n")
    return 1 if failed else 0


def run_doctor(out: IO[str], environ: dict[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)
    settings = Settings.from_env(env)
    checks = asyncio.run(run_checks(settings, env))
    return report(checks, out)


__all__ = ["Check", "Status", "report", "run_checks", "run_doctor", "where"]
