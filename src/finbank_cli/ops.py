"""Operations on a running bank, for the runbooks (docs/operations.md):

* ``finbank outbox status``: what waits in the outbox, how old the oldest event
  is, how many items are leased and the most delivery attempts of one; exit 1
  when the oldest is older than ``--max-age``.
* ``finbank dlq list``: the records waiting in a topic's dead-letter topic (key,
  reason, error class, where they came from; never the payload).
* ``finbank dlq replay``: copy them back to their topic, in order per key; the
  worker's inbox makes a record replayed twice count once.
* ``finbank secrets rewrap``: re-seal the users' TOTP secrets with the current
  key-encryption key (after a rotation; see docs/auth.md, "Secrets at rest").
* ``finbank secrets status``: how many users' secrets are sealed under which key
  id and how many are still plaintext; exit 1 with ``--require-current`` while
  some are not sealed with the current key.
* ``finbank med sweep``: one pass of the MED sweeper (lapses, stopped returns,
  expired blocks that nobody read; docs/pix-med.md); exit 1 when an item
  failed (it stays due for the next pass), naming it by EndToEndId.
"""

from __future__ import annotations

import asyncio
from typing import IO, TYPE_CHECKING

from finbank_adapters.settings import Settings

if TYPE_CHECKING:
    from finbank_core.pix.med.use_cases import SweepMedResult


def outbox_status(out: IO[str], max_age_seconds: float | None) -> int:
    from finbank_adapters.containers import build_container, close_container, resolve
    from finbank_adapters.kafka.relay import outbox_status as measure

    async def run() -> int:
        container = build_container(Settings.from_env())
        try:
            pool = await resolve(container.infra.postgres_pool())
            if pool is None:
                out.write("the outbox is on PostgreSQL only (FINBANK_EVENTS_BACKEND=postgres)\n")
                return 2
            status = await measure(pool, container.infra.clock())
        finally:
            await close_container(container)
        out.write(
            f"outbox: {status.backlog} waiting, oldest {status.oldest_age_seconds:.1f} s old,"
            f" {status.leased} leased, most attempts {status.max_attempts}\n"
        )
        if max_age_seconds is not None and status.oldest_age_seconds > max_age_seconds:
            out.write(f"the oldest event is older than {max_age_seconds:g} s\n")
            return 1
        return 0

    return asyncio.run(run())


def dlq_list(out: IO[str], topic: str, limit: int) -> int:
    from finbank_adapters.kafka.config import KafkaSettings
    from finbank_adapters.kafka.lag import list_dead_letters

    kafka = KafkaSettings.from_settings(Settings.from_env())
    letters = asyncio.run(list_dead_letters(kafka, topic, limit))
    for letter in letters:
        out.write(
            f"{letter.partition}:{letter.offset}  key={letter.key}  reason={letter.reason}"
            f"  error={letter.error}  from={letter.source}\n"
        )
    out.write(f"{len(letters)} record(s) waiting in {topic}.dlq\n")
    return 0


def dlq_replay(out: IO[str], topic: str, limit: int) -> int:
    from finbank_adapters.kafka.config import KafkaSettings
    from finbank_adapters.kafka.lag import replay_dead_letters

    kafka = KafkaSettings.from_settings(Settings.from_env())
    result = asyncio.run(replay_dead_letters(kafka, topic, limit))
    out.write(
        f"replayed {result.replayed} record(s) to {topic}; {result.remaining} left in {topic}.dlq\n"
    )
    return 0


def rewrap_secrets(out: IO[str]) -> int:
    """Re-seal, with the current key, every user row sealed with another key (or none)."""
    from finbank_adapters.containers import build_container, close_container, resolve
    from finbank_adapters.crypto.envelope import EnvelopeCipher
    from finbank_adapters.postgres.rewrap import rewrap_user_secrets

    async def run() -> int:
        container = build_container(Settings.from_env())
        try:
            pool = await resolve(container.infra.postgres_pool())
            if pool is None:
                out.write("the users are not in PostgreSQL on this profile: nothing to re-wrap\n")
                return 0
            cipher: EnvelopeCipher = await resolve(container.auth.secrets_cipher())
            report = await rewrap_user_secrets(pool, cipher)
        finally:
            await close_container(container)
        out.write(
            f"re-sealed {report.rewrapped} row(s) with key {cipher.current_key_id!r};"
            f" {report.skipped} changed meanwhile (already current)\n"
        )
        return 0

    return asyncio.run(run())


def secrets_status(out: IO[str], *, require_current: bool = False) -> int:
    """Rows sealed per key id, plaintext rows, and what ``rewrap`` would re-seal."""
    from finbank_adapters.containers import build_container, close_container, resolve
    from finbank_adapters.crypto.envelope import EnvelopeCipher
    from finbank_adapters.postgres.rewrap import secrets_status as measure

    async def run() -> int:
        container = build_container(Settings.from_env())
        try:
            pool = await resolve(container.infra.postgres_pool())
            if pool is None:
                out.write("the users are not in PostgreSQL on this profile: nothing stored\n")
                return 0
            cipher: EnvelopeCipher = await resolve(container.auth.secrets_cipher())
            status = await measure(pool, cipher)
        finally:
            await close_container(container)
        current = status.current_key_id
        out.write(f"current key: {current!r}\n")
        for key_id in sorted(status.sealed_by_key, key=lambda k: (k != current, k)):
            mark = " (current)" if key_id == current else ""
            out.write(f"sealed with {key_id!r}{mark}: {status.sealed_by_key[key_id]} row(s)\n")
        out.write(f"plaintext (before migration 0016): {status.plaintext} row(s)\n")
        if status.pending:
            out.write(f"{status.pending} row(s) to re-seal: run `finbank secrets rewrap`\n")
            return 1 if require_current else 0
        out.write("every secret is sealed with the current key\n")
        return 0

    return asyncio.run(run())


def med_sweep(out: IO[str], page_size: int) -> int:
    from finbank import open_bank
    from finbank_core.pix.med.use_cases import SweepMedCommand

    async def run() -> SweepMedResult:
        async with open_bank() as bank:
            return await bank.pix.med.sweep(SweepMedCommand(page_size=page_size))

    return report_med_sweep(out, asyncio.run(run()))


def report_med_sweep(out: IO[str], result: SweepMedResult) -> int:
    """One line for the pass, one per failed item; 1 when any failed."""
    out.write(
        f"med sweep up to {result.until.isoformat()}: {result.cases} case(s) and"
        f" {result.blocks} block(s) looked at, {len(result.failed_cases)} and"
        f" {len(result.failed_blocks)} failed\n"
    )
    for kind, failed in (("case", result.failed_cases), ("block", result.failed_blocks)):
        for end_to_end_id in failed:
            out.write(f"  {kind} {end_to_end_id} failed: it stays due for the next pass\n")
    return 1 if result.failed_cases or result.failed_blocks else 0
