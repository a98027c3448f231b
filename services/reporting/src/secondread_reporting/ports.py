"""The ports reporting's use cases need: small Protocols, so tests pass small fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from secondread_shared.events import CaseAssigned, Event


class CaseStatus(StrEnum):
    """Where a case stands on its reader's desk."""

    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    SIGNED = "signed"


OPEN = (CaseStatus.ASSIGNED, CaseStatus.ACCEPTED)
"""The statuses a worklist shows."""


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    radiologist_id: str
    status: CaseStatus
    assigned: CaseAssigned
    trace: dict[str, str]


class Cases(Protocol):
    async def case(self, case_id: str) -> CaseRow | None: ...

    async def open_cases(self, radiologist_id: str) -> list[CaseRow]: ...

    async def set_status(
        self, case_id: str, expected: CaseStatus, status: CaseStatus, events: list[Event]
    ) -> bool:
        """Move ``case_id`` from ``expected`` to ``status`` and enqueue ``events`` atomically;
        False when the case was not in ``expected`` (nothing changed)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


JSON = dict[str, Any]
