"""Eligibility, choice, due times and priority (pure)."""

from datetime import UTC, date, datetime, timedelta

from secondread_routing.assignment import CaseNeeds, Load, accept_by, choose, due_at, priority
from secondread_routing.roster import Reader
from secondread_shared.events import Priority, Urgency

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DUE = NOW + timedelta(hours=72)


def rd(rid: str, **over: object) -> Reader:
    base: dict[str, object] = {
        "id": rid,
        "display_name": rid.upper(),
        "subspecialties": ["chest"],
        "licences": [{"jurisdiction": "US", "expires": date(2030, 1, 1)}],
        "max_open": 2,
    }
    return Reader.model_validate(base | over)


def needs(**over: object) -> CaseNeeds:
    base: dict[str, object] = {
        "subspecialty": "chest", "jurisdiction": "US-NY", "hospital_id": "h1",
        "now": NOW, "due": DUE,
    }  # fmt: skip
    return CaseNeeds(**(base | over))  # type: ignore[arg-type]


def test_least_loaded_then_earliest_free_then_roster_order() -> None:
    roster = [rd("a"), rd("b"), rd("c")]
    assert choose(roster, needs(), {}).reader.id == "a"  # type: ignore[union-attr]
    load = {"a": Load(1, NOW), "b": Load(0)}
    assert choose(roster, needs(), load).reader.id == "b"  # type: ignore[union-attr]
    load = {"a": Load(1, NOW + timedelta(hours=5)), "b": Load(1, NOW + timedelta(hours=1)),
            "c": Load(1, NOW + timedelta(hours=9))}  # fmt: skip
    assert choose(roster, needs(), load).reader.id == "b"  # type: ignore[union-attr]


def test_licence_must_be_valid_on_the_due_date() -> None:
    expiring = rd(
        "a", licences=[{"jurisdiction": "US", "expires": (NOW + timedelta(days=1)).date()}]
    )
    got = choose([expiring], needs(), {})
    assert got.reader is None and got.reason.startswith("no licence for jurisdiction US-NY")
    assert choose([expiring], needs(due=NOW + timedelta(hours=12)), {}).reader is not None
    assert choose([rd("a")], needs(jurisdiction="DE"), {}).reason.startswith("no licence")


def test_conflict_absence_inactive_and_exclusion() -> None:
    got = choose([rd("a", conflicts=["h1"])], needs(), {})
    assert got.reader is None and got.reason == "conflict of interest with the sending hospital"
    away = rd("a", absences=[{"from": DUE.date(), "to": DUE.date() + timedelta(days=3)}])
    assert choose([away], needs(), {}).reason.startswith("no reader available")
    assert choose([rd("a", active=False)], needs(), {}).reason.startswith("no reader available")
    assert choose([away, rd("b")], needs(), {}).reader.id == "b"  # type: ignore[union-attr]
    got = choose([rd("a"), rd("b")], needs(excluded={"a"}), {})
    assert got.reader is not None and got.reader.id == "b"
    assert choose([rd("a")], needs(excluded={"a"}), {}).reason.startswith("every eligible reader")
    assert choose([rd("a")], needs(subspecialty="neuro"), {}).reason == (
        "no reader for subspecialty neuro"
    )


def test_strict_capacity_never_exceeds_soft_flags_it() -> None:
    roster = [rd("a"), rd("b", max_open=1)]
    full = {"a": Load(2), "b": Load(1)}
    got = choose(roster, needs(), full, capacity="strict")
    assert got.reader is None and got.reason == "everybody eligible is at capacity"
    got = choose(roster, needs(), full, capacity="soft")
    assert got.reader is not None and got.reader.id == "b" and got.over_capacity
    got = choose(roster, needs(), {"a": Load(2)}, capacity="strict")
    assert got.reader is not None and got.reader.id == "b" and not got.over_capacity


def test_due_accept_and_priority() -> None:
    assert due_at(NOW, Urgency.URGENT, routine_h=72, urgent_h=24) == NOW + timedelta(hours=24)
    assert due_at(NOW, Urgency.ROUTINE, routine_h=72, urgent_h=24) == NOW + timedelta(hours=72)
    assert accept_by(NOW, Urgency.URGENT, routine_min=240, urgent_min=30) == NOW + timedelta(
        minutes=30
    )
    assert accept_by(NOW, Urgency.ROUTINE, routine_min=240, urgent_min=30) == NOW + timedelta(
        hours=4
    )
    assert priority(Urgency.ROUTINE, raised=False) is Priority.ROUTINE
    assert priority(Urgency.ROUTINE, raised=True) is Priority.HIGH
    assert priority(Urgency.URGENT, raised=True) is Priority.URGENT
