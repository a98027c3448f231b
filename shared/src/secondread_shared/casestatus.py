"""Where each case stands: the latest event of the compacted status topic
(``secondread.case.status.v1``, keyed by case id), which cases are stuck, and what each state
waits for.

``secondread cases`` folds the topic with :func:`latest`; routing's operations page keeps the
same fold as a table (an upsert that applies :func:`supersedes`'s rule in SQL). A state this
code does not know (``CaseState`` may gain values within v1) is kept and shown as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from secondread_shared import topics
from secondread_shared.events import CaseState
from secondread_shared.records import Record, read_all

AUTOMATED_STATES = frozenset(
    {CaseState.RECEIVED.value, CaseState.DEIDENTIFIED.value, CaseState.SIGNED.value}
)
"""States a case leaves without a person acting (the next service picks it up in seconds).
``assigned`` and ``unassigned`` wait for a reader or the roster; the others are final."""

DEFAULT_STUCK_MINUTES = 15.0
"""``secondread cases --stuck`` and the operations page: minutes without progress."""

STAGES: dict[str, str] = {
    CaseState.RECEIVED.value: "de-identification (deidentify)",
    CaseState.DEIDENTIFIED.value: "routing to a reader (routing)",
    CaseState.QUARANTINED.value: "held for review (quarantine)",
    CaseState.UNASSIGNED.value: "waiting for an eligible reader (routing)",
    CaseState.ASSIGNED.value: "reading (reporting)",
    CaseState.SIGNED.value: "delivery (notify)",
    CaseState.NOTIFIED.value: "done: delivered",
    CaseState.NOTIFICATION_FAILED.value: "delivery failed (notify)",
    CaseState.DEAD_LETTERED.value: "dead letter: needs an operator",
}


def stage_of(state: str) -> str:
    """What a case in ``state`` waits for; an unknown state is named as it is."""
    return STAGES.get(state, f"unknown state {state!r}")


@dataclass(frozen=True)
class CaseStatus:
    """One status event of one case, and where it sits on the topic."""

    case_id: str
    state: str
    """A :class:`~secondread_shared.events.CaseState` value, or a newer one kept as it is."""
    producer: str
    detail: str
    occurred_at: datetime
    partition: int = 0
    offset: int = -1
    event_id: str = ""

    @property
    def order(self) -> tuple[datetime, int]:
        """What "later" means: the event's time, then its offset (a case's events share one
        partition, because the key is the case id)."""
        return (self.occurred_at, self.offset)


def _time(value: object) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def event_type_of(value: bytes) -> str | None:
    """The ``event_type`` a record's JSON names (``None``: not JSON, or it names none)."""
    try:
        ev = json.loads(value)
    except (ValueError, UnicodeError):
        return None
    kind = ev.get("event_type") if isinstance(ev, dict) else None
    return kind if isinstance(kind, str) else None


def parse(
    case_id: str, value: bytes, *, partition: int, offset: int, timestamp: datetime
) -> CaseStatus | None:
    """The status event in ``value`` (JSON of ``CaseStatusChanged``), read leniently: an unknown
    state is kept, a missing time falls back to the record's ``timestamp``. ``None`` for a
    record that is not a status event at all (not JSON, no state, no case id)."""
    try:
        ev = json.loads(value)
    except (ValueError, UnicodeError):
        return None
    if not isinstance(ev, dict) or not isinstance(ev.get("state"), str) or not ev["state"]:
        return None
    case = case_id or str(ev.get("case_id") or "")
    if not case:
        return None
    return CaseStatus(
        case_id=case,
        state=ev["state"],
        producer=str(ev.get("producer") or ""),
        detail=str(ev.get("detail") or ""),
        occurred_at=_time(ev.get("occurred_at")) or timestamp,
        partition=partition,
        offset=offset,
        event_id=str(ev.get("event_id") or ""),
    )


def of_record(record: Record) -> CaseStatus | None:
    """:func:`parse` of one record of the status topic."""
    return parse(
        record.key,
        record.value,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp,
    )


def supersedes(new: CaseStatus, old: CaseStatus | None) -> bool:
    """Whether ``new`` replaces ``old`` as the case's state: the later event wins (time, then
    offset); the same event delivered again changes nothing."""
    return old is None or new.order > old.order


def latest(statuses: Iterable[CaseStatus]) -> dict[str, CaseStatus]:
    """The winning status of each case, whatever order ``statuses`` come in."""
    out: dict[str, CaseStatus] = {}
    for status in statuses:
        if supersedes(status, out.get(status.case_id)):
            out[status.case_id] = status
    return out


def is_stuck(status: CaseStatus, now: datetime, after: timedelta) -> bool:
    """In an automated stage (:data:`AUTOMATED_STATES`) with no status change for ``after``."""
    return status.state in AUTOMATED_STATES and status.occurred_at < now - after


def stuck(
    states: Mapping[str, CaseStatus], now: datetime, after: timedelta
) -> dict[str, CaseStatus]:
    """The cases of ``states`` that :func:`is_stuck`."""
    return {case: s for case, s in states.items() if is_stuck(s, now, after)}


async def case_states(bootstrap: str) -> dict[str, CaseStatus]:
    """The latest status of every case, read from the beginning of the status topic."""
    records = await read_all(bootstrap, [topics.CASE_STATUS], lambda r: True)
    return latest(s for s in map(of_record, records) if s is not None)


async def status_events(bootstrap: str, case_id: str) -> list[CaseStatus]:
    """Every status event of one case, oldest first."""
    records = await read_all(bootstrap, [topics.CASE_STATUS], lambda r: r.key == case_id)
    found = [s for s in map(of_record, records) if s is not None]
    return sorted(found, key=lambda s: s.order)
