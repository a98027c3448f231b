"""What routing's use cases need from the outside world: small Protocols, faked in tests."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from secondread_routing.assignment import Load
from secondread_routing.priors import StudySummary
from secondread_routing.roster import Reader
from secondread_shared.events import (
    CaseDeidentified,
    EarlierOpinion,
    Event,
    Priority,
    PriorStudy,
)


@dataclass
class CaseRecord:
    """What routing keeps of a case between its events."""

    case_id: str
    event: CaseDeidentified
    subspecialty: str
    rule: str
    priority: Priority
    due_at: datetime
    flags: list[str]
    priors: list[PriorStudy]
    opinions: list[EarlierOpinion]
    state: str = ""
    """A :class:`~secondread_shared.events.CaseState` value: ``assigned``, ``unassigned``
    (waiting for a reader) or ``signed``; empty before the first decision."""
    reason: str = ""
    excluded: list[str] = field(default_factory=list)
    """Readers who declined the case or let it time out."""


@dataclass(frozen=True)
class AssignmentRecord:
    id: int
    case_id: str
    radiologist_id: str
    assigned_at: datetime
    accept_by: datetime | None
    accepted_at: datetime | None


class Unit(Protocol):
    """One transaction over routing's state, serialised against every other assignment
    decision (so two replicas never assign one case twice, or one reader past capacity)."""

    async def case(self, case_id: str) -> CaseRecord | None: ...
    async def save_case(self, case: CaseRecord) -> None: ...
    async def readers(self) -> list[Reader]: ...
    async def replace_readers(self, readers: Sequence[Reader]) -> list[str]:
        """Make the roster ``readers`` (in this order); the ids added, changed or removed."""
        ...

    async def load(self) -> dict[str, Load]: ...
    async def open_assignment(self, case_id: str) -> AssignmentRecord | None: ...
    async def add_assignment(
        self, case: CaseRecord, radiologist_id: str, at: datetime, accept_by: datetime
    ) -> None: ...
    async def close_assignment(self, assignment_id: int, reason: str, at: datetime) -> None: ...
    async def accept(self, assignment_id: int, at: datetime) -> None: ...
    async def rearm(self, assignment_id: int, accept_by: datetime | None) -> None:
        """Start an assignment's accept timer again (``None``: no timer)."""
        ...

    async def expired_timers(self, now: datetime, limit: int) -> list[AssignmentRecord]:
        """Open, unaccepted assignments past their accept time, locked; rows another
        transaction holds are skipped."""
        ...

    async def unassigned(self, limit: int) -> list[str]: ...
    async def opinions_of(self, patient_pseudonym: str) -> list[EarlierOpinion]: ...
    async def record_opinion(self, opinion: EarlierOpinion, patient_pseudonym: str) -> None: ...
    async def enqueue(self, events: Sequence[Event]) -> None:
        """Publish ``events`` once this transaction commits (transactional outbox)."""
        ...


class Repository(Protocol):
    def unit(self) -> AbstractAsyncContextManager[Unit]: ...


class Archive(Protocol):
    async def studies_of(self, patient_pseudonym: str) -> list[StudySummary]: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
