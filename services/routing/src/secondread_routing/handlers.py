"""routing's handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from secondread_routing.assignment import choose, classify, due_at, hedges, over_capacity
from secondread_routing.repository import RoutingRepository
from secondread_routing.roster import Roster
from secondread_routing.settings import RoutingSettings
from secondread_shared.errors import PermanentError
from secondread_shared.events import (
    CaseAssigned,
    CaseDeidentified,
    CaseState,
    CaseStatusChanged,
    Event,
)
from secondread_shared.logging import get_logger

log = get_logger(__name__)


class NoEligibleRadiologist(PermanentError):
    """No reader on the roster matches the case."""


@dataclass
class RoutingDeps:
    settings: RoutingSettings
    roster: Roster
    repo: RoutingRepository
    publish: Callable[[Event], Awaitable[None]]


async def case_deidentified(event: CaseDeidentified, deps: RoutingDeps) -> None:
    """Classify the case, assign a reader and announce it. A redelivery re-announces the same
    assignment (consumers deduplicate on case id), never a second one."""
    subspecialty = classify(event.modalities, event.body_parts, event.clinical_question)
    existing = await deps.repo.existing(event.case_id)
    flags = [*event.flags, *hedges(event.original_report)]
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
