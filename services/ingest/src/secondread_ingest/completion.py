"""When a case is complete, and what ingest announces: pure rules, no I/O.

A study that comes by DIMSE C-STORE or STOW-RS has no natural end. A case is complete when

1. its intake declared ``expected_instances`` and that many have arrived, or
2. no new instance arrived for the hospital's quiet period.

A case with instances but no intake is parked after the hospital's hold window; an intake that
arrives later takes it up again. Priors are fetched (when the intake allows and the hospital has
a PACS) once the current study is complete, and the case is announced after them. An instance
that arrives after the announcement is announced by a ``case.amended`` event once the quiet
period has passed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from secondread_ingest.intake import IntakeForm
from secondread_shared.events import CaseAmended, CaseReceived, InstanceRef, Role


class Status(StrEnum):
    """``cases.status`` in ingest's schema (also what ``GET /v1/cases/{id}`` shows)."""

    AWAITING_IMAGES = "awaiting_images"
    """Intake recorded; no instance yet."""
    RECEIVING = "receiving"
    """Instances arriving (with or without intake)."""
    COMPLETE = "complete"
    """All instances are in (an upload); priors may still be fetched."""
    FETCHING_PRIORS = "fetching_priors"
    PARKED = "parked"
    """Instances with no intake after the hold window; an intake takes it up again."""
    RECEIVED = "received"
    """Announced on ``secondread.phi.case.received.v1``."""


class Action(StrEnum):
    WAIT = "wait"
    ANNOUNCE = "announce"
    AMEND = "amend"
    PARK = "park"
    FETCH_PRIORS = "fetch_priors"


@dataclass(frozen=True)
class Progress:
    """What the completion rules need to know of one open case."""

    status: Status
    has_intake: bool
    instances: int
    unannounced: int
    last_instance_at: datetime | None
    expected_instances: int | None = None
    fetch_priors: bool = False
    priors_done: bool = False


@dataclass(frozen=True)
class Rules:
    quiet_period_s: float
    intake_hold_s: float
    pacs_configured: bool


def decide(p: Progress, rules: Rules, now: datetime) -> Action:
    """The next step for a case (see the module docstring)."""
    quiet = p.last_instance_at is not None and now - p.last_instance_at >= timedelta(
        seconds=rules.quiet_period_s
    )
    if p.status == Status.RECEIVED:
        return Action.AMEND if p.unannounced and quiet else Action.WAIT
    if p.status in (Status.PARKED, Status.FETCHING_PRIORS) or p.instances == 0:
        return Action.WAIT
    if not p.has_intake:
        held = p.last_instance_at is not None and now - p.last_instance_at >= timedelta(
            seconds=rules.intake_hold_s
        )
        return Action.PARK if held else Action.WAIT
    complete = (
        p.status == Status.COMPLETE
        or (p.expected_instances is not None and p.instances >= p.expected_instances)
        or quiet
    )
    if not complete:
        return Action.WAIT
    if p.fetch_priors and rules.pacs_configured and not p.priors_done:
        return Action.FETCH_PRIORS
    return Action.ANNOUNCE


def original_report(intake: IntakeForm, extracted: list[str]) -> str:
    """The intake's report text, or else the text of the report instances in the study."""
    if intake.original_report.strip():
        return intake.original_report
    return "\n\n".join(t for t in extracted if t.strip())


def received_event(
    *,
    case_id: str,
    hospital_id: str,
    intake: IntakeForm,
    instances: list[InstanceRef],
    extracted_reports: list[str],
    flags: list[str],
) -> CaseReceived:
    """The ``case.received`` announcement of a complete case."""
    return CaseReceived(
        case_id=case_id,
        producer="ingest",
        hospital_id=hospital_id,
        urgency=intake.urgency,
        clinical_question=intake.clinical_question,
        original_report=original_report(intake, extracted_reports),
        referring_physician=intake.referring_physician,
        patient_email=intake.patient_email,
        patient_delivery_consent=intake.patient_delivery_consent,
        delivery_channels=list(intake.delivery_channels) if intake.delivery_channels else None,
        jurisdiction=intake.jurisdiction,
        consent=intake.consent,
        instances=instances,
        flags=flags,
    )


def amended_event(
    *,
    case_id: str,
    hospital_id: str,
    causation_id: str | None,
    instances: list[InstanceRef],
    flags: list[str],
) -> CaseAmended:
    """The ``case.amended`` announcement of instances that came after ``case.received``."""
    prior = any(i.role == Role.PRIOR for i in instances)
    return CaseAmended(
        case_id=case_id,
        producer="ingest",
        causation_id=causation_id,
        hospital_id=hospital_id,
        reason="late_priors" if prior else "late_instances",
        instances=instances,
        flags=flags,
    )
