"""reporting's use cases, in the order a reader meets them: worklist, case view, accept or
decline. Written against the ports in :mod:`secondread_reporting.ports`; no HTTP, no Kafka."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from secondread_reporting.errors import Conflict, Forbidden, InvalidInput, NotFound
from secondread_reporting.ports import JSON, OPEN, CaseRow, Cases, CaseStatus, Clock
from secondread_reporting.statements import split_statements
from secondread_shared.events import CaseAccepted, CaseDeclined, Priority

PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.ROUTINE: 2}


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def reader_case(cases: Cases, case_id: str, reader: str) -> CaseRow:
    """The case if it is assigned to ``reader``: 404 when unknown, 403 (no data) otherwise."""
    row = await cases.case(case_id)
    if row is None:
        raise NotFound(f"no case {case_id}")
    if row.radiologist_id != reader:
        raise Forbidden(f"case {case_id} is not assigned to you")
    return row


def time_left(due: datetime, now: datetime) -> str:
    """``3 h 05 min`` before the due time, ``overdue 12 min`` after it."""
    seconds = int((due - now).total_seconds())
    minutes = abs(seconds) // 60
    text = f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
    return text if seconds >= 0 else f"overdue {text}"


@dataclass(frozen=True)
class Reporting:
    """The use cases, bound to their ports."""

    cases: Cases
    clock: Clock
    viewer_base_url: str

    async def worklist(self, reader: str) -> list[JSON]:
        """The reader's open cases: by priority (urgent, high, routine), then due time."""
        now = self.clock.now()
        rows = await self.cases.open_cases(reader)
        rows.sort(key=lambda r: (PRIORITY_RANK[r.assigned.priority], r.assigned.due_at))
        return [
            {
                "case_id": r.case_id,
                "priority": r.assigned.priority.value,
                "urgency": r.assigned.urgency.value,
                "subspecialty": r.assigned.subspecialty,
                "due_at": r.assigned.due_at.isoformat(),
                "time_left": time_left(r.assigned.due_at, now),
                "seconds_left": int((r.assigned.due_at - now).total_seconds()),
                "accept_by": r.assigned.accept_by.isoformat() if r.assigned.accept_by else None,
                "status": r.status.value,
                "flags": r.assigned.flags,
            }
            for r in rows
        ]

    async def case_view(self, case_id: str, reader: str) -> JSON:
        """What the reader needs to answer: the question, the original report as numbered
        statements, the triage flags, the priors and earlier opinions with viewer links."""
        row = await reader_case(self.cases, case_id, reader)
        a = row.assigned
        base = self.viewer_base_url
        study_of = {p.study_instance_uid: p.orthanc_study_id for p in a.priors}
        return {
            "case_id": case_id,
            "status": row.status.value,
            "priority": a.priority.value,
            "urgency": a.urgency.value,
            "due_at": a.due_at.isoformat(),
            "time_left": time_left(a.due_at, self.clock.now()),
            "subspecialty": a.subspecialty,
            "patient_pseudonym": a.patient_pseudonym,
            "clinical_question": a.clinical_question,
            "original_report": a.original_report,
            "statements": [
                {"number": s.number, "section": s.section, "text": s.text}
                for s in split_statements(a.original_report)
            ],
            "flags": a.flags,
            "viewer_links": [f"{base}studies/{sid}" for sid in a.orthanc_study_ids],
            "priors": [
                {**p.model_dump(mode="json"), "viewer_link": f"{base}studies/{p.orthanc_study_id}"}
                for p in a.priors
            ],
            "earlier_opinions": [
                {
                    **o.model_dump(mode="json"),
                    "report_link": f"/v1/reports/{o.report_id}",
                }
                for o in a.earlier_opinions
            ],
            "studies": [{"study_instance_uid": u, "orthanc_study_id": study_of.get(u)}
                        for u in a.study_instance_uids],
        }  # fmt: skip

    async def accept(self, case_id: str, reader: str) -> JSON:
        """Take the case (routing stops its accept timer). Accepting twice is a no-op."""
        row = await reader_case(self.cases, case_id, reader)
        if row.status == CaseStatus.ACCEPTED:
            return {"case_id": case_id, "status": row.status.value}
        if row.status != CaseStatus.ASSIGNED:
            raise Conflict(f"case {case_id} is {row.status.value}", code="not_open")
        event = CaseAccepted(case_id=case_id, producer="reporting", radiologist_id=reader)
        if not await self.cases.set_status(case_id, row.status, CaseStatus.ACCEPTED, [event]):
            raise Conflict(f"case {case_id} changed meanwhile; reload it", code="not_open")
        return {"case_id": case_id, "status": CaseStatus.ACCEPTED.value}

    async def decline(self, case_id: str, reader: str, reason: str) -> JSON:
        """Give the case back with a reason; routing assigns it to someone else."""
        reason = reason.strip()
        if not reason:
            raise InvalidInput("a decline needs a reason", code="reason_missing")
        row = await reader_case(self.cases, case_id, reader)
        if row.status not in OPEN:
            raise Conflict(f"case {case_id} is {row.status.value}", code="not_open")
        event = CaseDeclined(
            case_id=case_id, producer="reporting", radiologist_id=reader, reason=reason
        )
        if not await self.cases.set_status(case_id, row.status, CaseStatus.DECLINED, [event]):
            raise Conflict(f"case {case_id} changed meanwhile; reload it", code="not_open")
        return {"case_id": case_id, "status": CaseStatus.DECLINED.value}
