"""The receiving bank's analysis of an infraction report: accept (and block) or reject.

Within ``MedRules.analysis_days`` of receiving the report
(``MedDeadlinePassed`` after). The decision is recorded first, under the
case's version, so of concurrent analysts exactly one decides; only that
one places the holds (:class:`~.tracing.BlockTracer`). If it stops between
the two, the next step on the case (a repeat of the same decision, the
refund request) places them: the case says ``blocks_applied=False`` until
then.
"""

from __future__ import annotations

import msgspec

from finbank_core.pix.med import events as med_events
from finbank_core.pix.med.errors import MedAlreadyDecided, MedCaseNotFound, MedVersionConflict
from finbank_core.pix.med.model import CaseStatus, Decision, MedCase
from finbank_core.pix.med.use_cases.common import RETRIES, MedDeps, check_operator_id
from finbank_core.pix.med.use_cases.tracing import BlockTracer
from finbank_core.shared.inputs import check_lookup_id, checked_enums


class AnalyseInfractionReportCommand(msgspec.Struct, frozen=True, kw_only=True):
    end_to_end_id: str
    decision: Decision
    #: the analyst (kept with the case)
    analyst_id: str


class AnalysisResult(msgspec.Struct, frozen=True, kw_only=True):
    case: MedCase
    replayed: bool = False


_DECIDED = {
    CaseStatus.AGREED: Decision.AGREED,
    CaseStatus.REFUND_REQUESTED: Decision.AGREED,
    CaseStatus.CLOSED: Decision.AGREED,
    CaseStatus.LAPSED: Decision.AGREED,
    CaseStatus.DISAGREED: Decision.DISAGREED,
}


class AnalyseInfractionReport:
    """Record the decision on a report (see the module docstring).

    The same decision again answers the recorded one (``replayed``); the
    other decision after one was recorded is refused (``MedAlreadyDecided``).
    """

    def __init__(self, deps: MedDeps) -> None:
        self._d = deps
        self._tracer = BlockTracer(deps)

    async def __call__(self, cmd: AnalyseInfractionReportCommand) -> AnalysisResult:
        check_lookup_id(cmd.end_to_end_id, "end_to_end_id")
        check_operator_id(cmd.analyst_id, "analyst_id")  # stored with it
        cmd = checked_enums(cmd)  # the decision, compared by identity
        d = self._d
        for _ in range(RETRIES):
            case = await d.current_case(cmd.end_to_end_id)
            if case is None:
                raise MedCaseNotFound()
            decided = _DECIDED.get(case.status)
            if decided is not None:
                if decided is not cmd.decision:
                    raise MedAlreadyDecided(
                        f"the report was already analysed: {decided.value}", field="decision"
                    )
                applied = await self._tracer.apply(case)
                await d.republish_case(applied)  # in case a crash lost them
                return AnalysisResult(case=applied, replayed=True)
            try:
                stored = await d.repository.update_case(
                    case.decide(cmd.decision, cmd.analyst_id, d.clock.now(), d.rules),
                    case.version,
                )
            except MedVersionConflict:
                continue
            await d.publish_case(med_events.REPORT_ANALYSED, stored)
            return AnalysisResult(case=await self._tracer.apply(stored))
        raise MedVersionConflict()
