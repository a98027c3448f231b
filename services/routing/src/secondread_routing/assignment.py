"""Eligibility, choice of reader, due times and priority: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from secondread_routing.roster import Reader
from secondread_shared.events import Priority, Urgency

CapacityPolicy = Literal["strict", "soft"]
OVER_CAPACITY_FLAG = "over_capacity"


@dataclass(frozen=True)
class Load:
    """A reader's open assignments: how many, and when the last of them is due."""

    open: int = 0
    free_at: datetime | None = None


@dataclass(frozen=True)
class CaseNeeds:
    subspecialty: str
    jurisdiction: str
    hospital_id: str
    now: datetime
    due: datetime
    excluded: Collection[str] = ()
    """Readers who declined the case or let it time out: never chosen again for it."""


@dataclass(frozen=True)
class Choice:
    reader: Reader | None
    over_capacity: bool = False
    reason: str = ""
    """Why nobody was chosen (empty when somebody was)."""


def choose(
    roster: Sequence[Reader],
    needs: CaseNeeds,
    load: Mapping[str, Load],
    *,
    capacity: CapacityPolicy = "strict",
) -> Choice:
    """The reader to assign, or nobody with the reason.

    Eligible, in the order the filters apply (the first that leaves nobody is the reason): the
    subspecialty; not excluded (declined or timed out); a licence for the jurisdiction or its
    country valid on the due date; no conflict with the sending hospital; available (active, no
    absence from today to the due date); under capacity (``max_open``). Under ``soft`` capacity a
    reader at capacity stays eligible and the choice says ``over_capacity``.

    Choice: fewest open cases, then the earliest free (the last open case due soonest; nothing
    open is freest), then roster order.
    """
    first_day, due_day = needs.now.date(), needs.due.date()
    pool = [r for r in roster if needs.subspecialty in r.subspecialties]
    filters: list[tuple[str, list[Reader]]] = [
        (f"no reader for subspecialty {needs.subspecialty}", pool)
    ]
    pool = [r for r in pool if r.id not in needs.excluded]
    filters.append(("every eligible reader declined or let the case time out", pool))
    pool = [r for r in pool if r.licensed_for(needs.jurisdiction, due_day)]
    filters.append(
        (f"no licence for jurisdiction {needs.jurisdiction} valid on {due_day.isoformat()}", pool)
    )
    pool = [r for r in pool if needs.hospital_id not in r.conflicts]
    filters.append(("conflict of interest with the sending hospital", pool))
    pool = [r for r in pool if not r.away(first_day, due_day)]
    filters.append(("no reader available (inactive or absent until the due date)", pool))
    for reason, remaining in filters:
        if not remaining:
            return Choice(None, reason=reason)
    under = [r for r in pool if load.get(r.id, Load()).open < r.max_open]
    over = False
    if not under:
        if capacity == "strict":
            return Choice(None, reason="everybody eligible is at capacity")
        under, over = pool, True
    order = {r.id: i for i, r in enumerate(roster)}

    def key(r: Reader) -> tuple[int, float, int]:
        lo = load.get(r.id, Load())
        free = lo.free_at.timestamp() if lo.free_at else float("-inf")
        return (lo.open, free, order[r.id])

    return Choice(min(under, key=key), over_capacity=over)


def due_at(received: datetime, urgency: Urgency, *, routine_h: float, urgent_h: float) -> datetime:
    """When the second opinion is due."""
    hours = urgent_h if urgency is Urgency.URGENT else routine_h
    return received + timedelta(hours=hours)


def accept_by(
    assigned: datetime, urgency: Urgency, *, routine_min: float, urgent_min: float
) -> datetime:
    """When an assignment that has not been accepted goes to the next reader."""
    minutes = urgent_min if urgency is Urgency.URGENT else routine_min
    return assigned + timedelta(minutes=minutes)


_LEVELS = (Priority.ROUTINE, Priority.HIGH, Priority.URGENT)


def priority(urgency: Urgency, *, raised: bool) -> Priority:
    """Urgent cases are ``urgent``, routine ones ``routine``; a triage flag configured with
    ``raises_priority`` lifts the case one level (routine to high, high to urgent)."""
    base = Priority.URGENT if urgency is Urgency.URGENT else Priority.ROUTINE
    if not raised:
        return base
    return _LEVELS[min(_LEVELS.index(base) + 1, len(_LEVELS) - 1)]
