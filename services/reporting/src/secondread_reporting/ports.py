"""The ports reporting's use cases need: small Protocols, so tests pass small fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from secondread_reporting.report import DraftContent
from secondread_shared.events import CaseAssigned, Event, ObjectRef


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


@dataclass(frozen=True)
class Draft:
    version: int
    content: DraftContent


@dataclass(frozen=True)
class Attempt:
    """One signature in the making: its document is fixed (canonical bytes and signature) before
    any output is written, so a retry writes the same objects under the same names."""

    report_id: str
    case_id: str
    kind: str
    amends: str | None
    radiologist_id: str
    draft_version: int
    key_id: str
    canonical: bytes
    signature: str
    signed_at: datetime
    archive_ids: list[str]
    completed: bool = False


@dataclass(frozen=True)
class Written:
    """Where a signed document's outputs went."""

    report: ObjectRef
    signature: ObjectRef
    pdf: ObjectRef
    fhir: ObjectRef
    archive_ids: list[str]


class Drafts(Protocol):
    async def draft(self, case_id: str) -> Draft | None: ...

    async def save_draft(
        self, case_id: str, reader: str, content: DraftContent, expected: int | None
    ) -> int | None: ...


class Signatures(Protocol):
    async def signed_report(self, case_id: str) -> dict[str, Any] | None: ...

    async def report(self, report_id: str) -> dict[str, Any] | None: ...

    async def addenda(self, report_id: str) -> list[str]:
        """The ids of the addenda to ``report_id``, oldest first."""
        ...

    async def attempt_for_key(self, case_id: str, key: str) -> tuple[Attempt, str] | None: ...

    async def pending_attempt(self, case_id: str) -> Attempt | None: ...

    async def save_attempt(self, attempt: Attempt, key: str, request: str) -> None: ...

    async def bind_key(self, attempt: Attempt, key: str, request: str) -> None: ...

    async def set_archive_ids(self, report_id: str, ids: list[str]) -> None: ...

    async def record_signed(
        self, attempt: Attempt, *, object_key: str, events: list[Event]
    ) -> bool: ...


class Keys(Protocol):
    async def signing_key(self, radiologist_id: str) -> Ed25519PrivateKey: ...

    async def public_key(self, kid: str) -> tuple[str, bytes] | None: ...

    async def keys(self) -> list[dict[str, Any]]: ...


class Outputs(Protocol):
    """Writes a signed document's outputs: the reports bucket, then the archive."""

    async def write(
        self, attempt: Attempt, document: dict[str, Any], fingerprint: str
    ) -> Written: ...

    async def remove_archived(self, archive_ids: list[str]) -> None: ...


@dataclass(frozen=True)
class CaseStudies:
    """The StudyInstanceUIDs an open case names: its own, its priors', and the ids of the
    earlier cases whose signed opinions it lists (read without the whole assignment)."""

    case_id: str
    studies: list[str]
    priors: list[str]
    earlier_cases: list[str]


class Studies(Protocol):
    """What the viewer's DICOMweb proxy asks on every request: cheap, no whole assignment."""

    async def open_case_studies(self, radiologist_id: str) -> list[CaseStudies]: ...

    async def studies_of(self, case_ids: list[str]) -> dict[str, list[str]]:
        """The own StudyInstanceUIDs of each of ``case_ids`` (unknown ids are left out)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


JSON = dict[str, Any]
