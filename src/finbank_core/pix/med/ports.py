"""Ports of MED: where cases and blocks are kept, and the directory's MED messages."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec

from finbank_core.pix.med.model import FraudSituation, MedCase, MedDue, PrecautionaryBlock
from finbank_core.shared.money import Money


class MedRepository(Protocol):
    """MED cases and precautionary blocks, one of each at most per EndToEndId.

    Writes are conditional: ``add_*`` on the EndToEndId being new, ``update_*``
    on the version read (one writer per version, whoever races).
    """

    async def add_case(self, case: MedCase) -> MedCase:
        """Store a new case with version 1; ``MedCaseAlreadyExists`` if the payment has one."""
        ...

    async def get_case(self, end_to_end_id: str) -> MedCase | None:
        """The payment's case, or ``None``."""
        ...

    async def update_case(self, case: MedCase, expected_version: int) -> MedCase:
        """Replace the case if its stored version is ``expected_version``; returns it stored.

        Raises ``MedVersionConflict`` on a mismatch, ``MedCaseNotFound`` if absent.
        """
        ...

    async def add_block(self, block: PrecautionaryBlock) -> PrecautionaryBlock:
        """Store a new block with version 1; ``PrecautionaryBlockAlreadyExists`` if taken."""
        ...

    async def get_block(self, end_to_end_id: str) -> PrecautionaryBlock | None:
        """The payment's precautionary block, or ``None``."""
        ...

    async def update_block(
        self, block: PrecautionaryBlock, expected_version: int
    ) -> PrecautionaryBlock:
        """Optimistic replace, as :meth:`update_case` (``MedVersionConflict``)."""
        ...

    async def due_cases(
        self, until: datetime, *, after: MedDue | None = None, limit: int = 100
    ) -> list[MedDue]:
        """Cases whose ``attention_at()`` is at or before ``until``, as stored by the
        last write, by ``(at, end_to_end_id)``, those after ``after`` only, at most
        ``limit`` of them. Stores may answer from an index a moment behind the
        writes (a DynamoDB GSI): a caller reads each case again before acting."""
        ...

    async def due_blocks(
        self, until: datetime, *, after: MedDue | None = None, limit: int = 100
    ) -> list[MedDue]:
        """Blocks whose ``attention_at()`` is at or before ``until`` (an active one's
        deadline, a reduction whose event is owed), as :meth:`due_cases`."""
        ...


class InfractionReportMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A notificação de infração as this bank sends it to the directory (DICT).

    No personal data: the payment is named by its EndToEndId.
    """

    report_id: str
    end_to_end_id: str
    situation: FraudSituation
    reported_at: datetime
    #: the institution that analyses it (the receiving bank's ISPB)
    to_ispb: str


class RefundRequestMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A solicitação de devolução after an accepted report."""

    report_id: str
    end_to_end_id: str
    amount: Money
    requested_at: datetime
    to_ispb: str


class MedDirectory(Protocol):
    """The directory's (DICT) MED messages to other institutions.

    Returns themselves are SPI messages (pacs.004) and go through
    ``PaymentNetwork.send_return``.
    """

    async def send_infraction_report(self, message: InfractionReportMessage) -> None:
        """Deliver a report; the same ``report_id`` twice is delivered once.

        Raises ``ServiceUnavailable`` when the outcome is unknown (repeat it).
        """
        ...

    async def send_refund_request(self, message: RefundRequestMessage) -> None:
        """Deliver a refund request; idempotent by ``report_id`` like reports."""
        ...
