"""routing's handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from secondread_routing.assignment import choose, classify, due_at, hedges, over_capacity
from secondread_routing.priors import StudySummary, rank_priors
from secondread_routing.repository import RoutingRepository
from secondread_routing.roster import Roster
from secondread_routing.settings import RoutingSettings
from secondread_shared.errors import PermanentError, TransientError
from secondread_shared.events import (
    CaseAssigned,
    CaseDeidentified,
    CaseState,
    CaseStatusChanged,
    Event,
    PriorStudy,
)
from secondread_shared.logging import get_logger

log = get_logger(__name__)


class NoEligibleRadiologist(PermanentError):
    """No reader on the roster matches the case."""


class Archive(Protocol):
    async def studies_of(self, patient_pseudonym: str) -> list[StudySummary]: ...


class _NoArchive:
    async def studies_of(self, patient_pseudonym: str) -> list[StudySummary]:
        return []


@dataclass
class RoutingDeps:
    settings: RoutingSettings
    roster: Roster
    repo: RoutingRepository
    publish: Callable[[Event], Awaitable[None]]
    archive: Archive = field(default_factory=_NoArchive)


async def find_priors(event: CaseDeidentified, archive: Archive) -> list[PriorStudy]:
    """The patient's other archived studies, most relevant first (body part, modality,
    recency). An archive that does not answer costs the priors, never the assignment."""
    studies = await archive.studies_of(event.patient_pseudonym)
    current_uids = set(event.study_instance_uids)
    current = [s for s in studies if s.study_instance_uid in current_uids]
    others = [s for s in studies if s.study_instance_uid not in current_uids]
    return [
        PriorStudy(
            orthanc_study_id=r.study.orthanc_id,
            study_instance_uid=r.study.study_instance_uid,
            study_date=r.study.study_date.strftime("%Y%m%d") if r.study.study_date else "",
            description=r.study.description,
            modalities=sorted(r.study.modalities),
            body_parts=sorted(r.study.body_parts),
            score=r.score,
            reasons=list(r.reasons),
        )
        for r in rank_priors(current, others)
    ]


async def case_deidentified(event: CaseDeidentified, deps: RoutingDeps) -> None:
    """Classify the case, assign a reader and announce it. A redelivery re-announces the same
    assignment (consumers deduplicate on case id), never a second one."""
    subspecialty = classify(event.modalities, event.body_parts, event.clinical_question)
    existing = await deps.repo.existing(event.case_id)
    flags = [*event.flags, *hedges(event.original_report)]
    try:
        priors = await find_priors(event, deps.archive)
    except TransientError as exc:
        priors = []
        flags.append("priors_unavailable")
        log.warning("priors_unavailable", error=type(exc).__name__)
    if existing is None:
        workload = await deps.repo.workload()
        rad = choose(
            deps.roster,
            subspecialty=subspecialty,
            jurisdiction=event.jurisdiction,
            hospital_id=event.hospital_id,
            workload=workload,
        )
        if rad is None:
            raise NoEligibleRadiologist(
                f"no eligible radiologist for {subspecialty} in {event.jurisdiction}"
            )
        if over_capacity(rad, workload):
            flags.append("over_capacity")
            log.warning("assigned_over_capacity", radiologist=rad.id, subspecialty=subspecialty)
        due = due_at(
            event.occurred_at,
            event.urgency,
            routine_h=deps.settings.routine_due_hours,
            urgent_h=deps.settings.urgent_due_hours,
        )
        await deps.repo.assign(event.case_id, rad.id, subspecialty, event.urgency.value, due)
        existing = await deps.repo.existing(event.case_id)
    assert existing is not None
    radiologist_id = str(existing["radiologist_id"])
    due_time = existing["due_at"]
    assert isinstance(due_time, datetime)
    out = CaseAssigned(
        case_id=event.case_id,
        producer="routing",
        causation_id=event.event_id,
        radiologist_id=radiologist_id,
        subspecialty=str(existing["subspecialty"]),
        urgency=event.urgency,
        due_at=due_time,
        patient_pseudonym=event.patient_pseudonym,
        clinical_question=event.clinical_question,
        original_report=event.original_report,
        study_instance_uids=event.study_instance_uids,
        orthanc_study_ids=event.orthanc_study_ids,
        flags=flags,
        priors=priors,
    )
    await deps.publish(out)
    await deps.publish(
        CaseStatusChanged(
            case_id=event.case_id,
            producer="routing",
            causation_id=out.event_id,
            state=CaseState.ASSIGNED,
            detail=f"{out.subspecialty} -> {radiologist_id}",
        )
    )
    log.info("case_assigned", radiologist=radiologist_id, subspecialty=out.subspecialty)
