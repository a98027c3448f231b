"""The status topic's fold: lenient parsing, the later event wins whatever the delivery order,
and the stuck rule (``secondread cases --stuck`` and the operations page)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from secondread_shared.casestatus import (
    CaseStatus,
    is_stuck,
    latest,
    parse,
    stage_of,
    supersedes,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def event(state: str, **over: object) -> bytes:
    body = {
        "event_id": "e1",
        "event_type": "case.status",
        "case_id": "c1",
        "producer": "routing",
        "occurred_at": "2026-12-01T09:00:00.250000Z",
        "state": state,
        "detail": "d",
    }
    return json.dumps(body | over).encode()


def test_a_status_event_is_read_with_an_unknown_state_kept_as_it_is() -> None:
    s = parse("c1", event("parked"), partition=2, offset=7, timestamp=T0)
    assert s is not None
    assert (s.case_id, s.state, s.producer, s.detail) == ("c1", "parked", "routing", "d")
    assert s.occurred_at == T0 + timedelta(milliseconds=250)
    assert (s.partition, s.offset, s.event_id) == (2, 7, "e1")
    assert stage_of("parked") == "unknown state 'parked'"
    assert stage_of("assigned") == "reading (reporting)"


def test_what_is_not_a_status_event_is_none_and_a_missing_time_is_the_records() -> None:
    for junk in (b"{not json", b"[]", json.dumps({"case_id": "c1"}).encode(), event("")):
        assert parse("c1", junk, partition=0, offset=0, timestamp=T0) is None
    assert parse("", event("received", case_id=""), partition=0, offset=0, timestamp=T0) is None
    s = parse("c1", event("received", occurred_at="yesterday"), partition=0, offset=0, timestamp=T0)
    assert s is not None and s.occurred_at == T0


def status(state: str, minutes: float, offset: int, case_id: str = "c1") -> CaseStatus:
    at = T0 + timedelta(minutes=minutes)
    return CaseStatus(case_id, state, "svc", "", at, partition=0, offset=offset)


def test_the_later_event_wins_then_the_higher_offset_and_a_redelivery_changes_nothing() -> None:
    a, b = status("received", 0, 1), status("deidentified", 1, 2)
    assert supersedes(b, a) and not supersedes(a, b) and supersedes(a, None)
    assert not supersedes(a, a)
    tie = status("assigned", 1, 3)
    assert supersedes(tie, b)


@given(
    st.lists(
        st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 5), st.integers(0, 50)),
        min_size=1,
        max_size=30,
    ),
    st.randoms(),
)
def test_latest_is_the_same_whatever_the_delivery_order(
    events: list[tuple[str, int, int]], rnd: object
) -> None:
    statuses = [status(f"s{o}", m, o, case_id=c) for c, m, o in events]
    shuffled = list(statuses) * 2  # every event delivered twice
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    expected = {c: max((s for s in statuses if s.case_id == c), key=lambda s: s.order)
                for c in {s.case_id for s in statuses}}  # fmt: skip
    assert latest(shuffled) == expected


def test_only_an_automated_stage_without_progress_is_stuck() -> None:
    now = T0 + timedelta(minutes=60)
    after = timedelta(minutes=15)
    assert is_stuck(status("received", 30, 1), now, after)
    assert is_stuck(status("signed", 0, 1), now, after)
    assert not is_stuck(status("received", 50, 1), now, after)
    for state in ("assigned", "unassigned", "notified", "dead_lettered", "parked"):
        assert not is_stuck(status(state, 0, 1), now, after)
