"""What an operator sees, and the at-risk rule (pure: no Kafka, HTTP or SQL).

An operator sees pseudonymous case ids, states, stages, times, routing's decisions (priority,
subspecialty, reader id) and dead-letter headers: never an identity, never a payload. The stuck
rule is the shared one (:func:`secondread_shared.casestatus.is_stuck`, as ``secondread cases
--stuck``); the at-risk rule is routing's, which owns the due times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from secondread_shared.casestatus import CaseStatus, is_stuck, stage_of
from secondread_shared.deadletters import DeadLetter
from secondread_shared.events import CaseState

REPORT_DONE_STATES = frozenset(
    {CaseState.SIGNED.value, CaseState.NOTIFIED.value, CaseState.NOTIFICATION_FAILED.value}
)
"""States past the due time's purpose: the report is signed."""


class Risk(StrEnum):
    OVERDUE = "overdue"
    DUE_SOON = "due_soon"


def risk_of(state: str, due_at: datetime | None, now: datetime, within: timedelta) -> Risk | None:
    """A case not signed yet is ``overdue`` past its due time and ``due_soon`` when less than
    ``within`` is left; a case without a due time (not routed yet) or signed is not at risk."""
    if due_at is None or state in REPORT_DONE_STATES:
        return None
    if due_at <= now:
        return Risk.OVERDUE
    if due_at - now <= within:
        return Risk.DUE_SOON
    return None


@dataclass(frozen=True)
class Policy:
    stuck_after: timedelta
    """Default minutes without progress before a case in an automated stage is stuck."""
    at_risk_within: timedelta
    """How close to its due time a case is at risk."""


@dataclass(frozen=True)
class CaseRow:
    """A case of the status view, with what routing decided about it."""

    status: CaseStatus
    first_seen_at: datetime
    due_at: datetime | None = None
    priority: str = ""
    subspecialty: str = ""
    reader: str = ""


@dataclass(frozen=True)
class LetterRef:
    """Where a dead letter is: its DLQ topic, partition and offset."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


@dataclass(frozen=True)
class Replay:
    """A recorded replay of one dead letter."""

    ref: LetterRef
    operator: str
    requested_at: datetime
    target_topic: str
    published_at: datetime


@dataclass(frozen=True)
class LetterRow:
    letter: DeadLetter
    replay: Replay | None = None


class CaseView(BaseModel):
    case_id: str = Field(description="the case id (pseudonymous)")
    state: str = Field(description="the latest state; a state unknown to this version as it is")
    stage: str = Field(description="what the case waits for")
    producer: str = Field(description="the service that reported the state")
    detail: str
    updated_at: datetime = Field(description="when the latest state was reported")
    first_seen_at: datetime
    age_seconds: float = Field(description="since the case's first status event")
    idle_seconds: float = Field(description="since its latest status change")
    due_at: datetime | None = None
    due_in_seconds: float | None = Field(None, description="negative when overdue")
    priority: str = ""
    subspecialty: str = ""
    reader: str = Field("", description="the reader id of the open assignment")
    stuck: bool
    risk: Risk | None = None


def case_view(row: CaseRow, now: datetime, stuck_after: timedelta, within: timedelta) -> CaseView:
    s = row.status
    return CaseView(
        case_id=s.case_id,
        state=s.state,
        stage=stage_of(s.state),
        producer=s.producer,
        detail=s.detail,
        updated_at=s.occurred_at,
        first_seen_at=row.first_seen_at,
        age_seconds=round((now - row.first_seen_at).total_seconds(), 1),
        idle_seconds=round((now - s.occurred_at).total_seconds(), 1),
        due_at=row.due_at,
        due_in_seconds=round((row.due_at - now).total_seconds(), 1) if row.due_at else None,
        priority=row.priority,
        subspecialty=row.subspecialty,
        reader=row.reader,
        stuck=is_stuck(s, now, stuck_after),
        risk=risk_of(s.state, row.due_at, now, within),
    )


class CasesOverview(BaseModel):
    generated_at: datetime
    stuck_after_minutes: float
    at_risk_hours: float
    state: str | None = Field(None, description="the state filter of ``cases``, if any")
    counts: dict[str, int] = Field(description="cases by state (every case of the view)")
    total: int
    cases: list[CaseView] = Field(description="most recently changed first (the state filter)")
    at_risk: list[CaseView] = Field(description="overdue or due soon, soonest due first")
    stuck: list[CaseView] = Field(description="no progress in an automated stage, oldest first")


class ReplayView(BaseModel):
    operator: str
    requested_at: datetime
    published_at: datetime
    target_topic: str


def replay_view(replay: Replay) -> ReplayView:
    return ReplayView(
        operator=replay.operator,
        requested_at=replay.requested_at,
        published_at=replay.published_at,
        target_topic=replay.target_topic,
    )


class LetterView(BaseModel):
    """A dead letter's headers and position; never its payload."""

    topic: str
    partition: int
    offset: int
    case_id: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    service: str
    attempts: int | None
    reason: str = Field(description="the reason header, input values withheld")
    phi_zone: bool = Field(description="a PHI-zone topic: its payload holds PHI")
    dead_lettered_at: datetime
    replayed_from: str = Field("", description="this letter is a replay that failed again")
    replay: ReplayView | None = None


def letter_view(row: LetterRow) -> LetterView:
    d = row.letter
    return LetterView(
        topic=d.topic,
        partition=d.partition,
        offset=d.offset,
        case_id=d.case_id,
        source_topic=d.source_topic,
        source_partition=d.source_partition,
        source_offset=d.source_offset,
        service=d.service,
        attempts=d.attempts,
        reason=d.reason,
        phi_zone=d.phi_zone,
        dead_lettered_at=d.dead_lettered_at,
        replayed_from=d.replayed_from,
        replay=replay_view(row.replay) if row.replay else None,
    )


class LettersOverview(BaseModel):
    generated_at: datetime
    total: int
    not_replayed: int
    letters: list[LetterView] = Field(description="newest first")


class ReplayOutcome(BaseModel):
    status: str = Field(description="``replayed`` now, or ``already_replayed`` earlier")
    letter: LetterView
