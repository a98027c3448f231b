"""The operations use cases with small fakes: cases by state, the stuck and at-risk rules, and a
replay that happens once however often it is asked for."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from secondread_routing.ops import handlers
from secondread_routing.ops.domain import LetterRef, Risk, risk_of
from secondread_routing.ops.errors import InvalidInput, NotFound
from secondread_routing.ops.handlers import UnreadableStatus
from secondread_shared import topics
from secondread_shared.casestatus import CaseStatus
from secondread_shared.deadletters import REPLAYED_FROM
from secondread_shared.errors import PermanentError
from secondread_shared.records import Record
from tests.ops_fakes import DLQ, NOW, World, dead_letter, new_world


@pytest.fixture
def world() -> World:
    return new_world()


def status(case_id: str, state: str, minutes_ago: float, offset: int = 0) -> CaseStatus:
    return CaseStatus(case_id, state, "svc", "", NOW - timedelta(minutes=minutes_ago), 0, offset)


async def test_cases_by_state_with_age_stage_stuck_and_at_risk(world: World) -> None:
    for s in (
        status("c-new", "received", 120, 1),
        status("c-new", "deidentified", 40, 2),  # stuck in routing for 40 min
        status("c-fresh", "received", 2, 3),
        status("c-overdue", "assigned", 300, 4),
        status("c-soon", "assigned", 100, 5),
        status("c-later", "assigned", 100, 6),
        status("c-signed-late", "signed", 5, 7),
        status("c-odd", "parked", 500, 8),  # a state added later within v1: shown as it is
    ):
        await world.ops.status_changed(s)
    world.view.due = {
        "c-overdue": NOW - timedelta(hours=1),
        "c-soon": NOW + timedelta(hours=2),
        "c-later": NOW + timedelta(hours=30),
        "c-signed-late": NOW - timedelta(hours=3),  # signed: the due time no longer applies
    }
    o = await world.ops.cases(state=None, stuck_after=None, limit=100)
    assert o.counts == {"assigned": 3, "deidentified": 1, "received": 1, "signed": 1, "parked": 1}
    assert o.total == 7 and o.stuck_after_minutes == 15 and o.at_risk_hours == 6
    assert [c.case_id for c in o.stuck] == ["c-new"]
    [stuck] = o.stuck
    assert stuck.age_seconds == 120 * 60 and stuck.idle_seconds == 40 * 60
    assert stuck.stage == "routing to a reader (routing)"
    assert [(c.case_id, c.risk) for c in o.at_risk] == [
        ("c-overdue", Risk.OVERDUE),
        ("c-soon", Risk.DUE_SOON),
    ]
    assert o.at_risk[0].due_in_seconds == -3600
    assert [c.case_id for c in o.cases][:3] == ["c-fresh", "c-signed-late", "c-new"]
    odd = next(c for c in o.cases if c.case_id == "c-odd")
    assert (odd.state, odd.stage, odd.stuck) == ("parked", "unknown state 'parked'", False)

    # the threshold is the operator's to choose; the state filter narrows the list only
    o = await world.ops.cases(state="received", stuck_after=timedelta(minutes=1), limit=100)
    assert [c.case_id for c in o.cases] == ["c-fresh"]
    assert [c.case_id for c in o.stuck] == ["c-new", "c-signed-late", "c-fresh"]
    assert o.total == 7


def test_the_at_risk_rule() -> None:
    within = timedelta(hours=6)
    assert risk_of("assigned", NOW, NOW, within) is Risk.OVERDUE
    assert risk_of("unassigned", NOW + within, NOW, within) is Risk.DUE_SOON
    assert risk_of("assigned", NOW + within + timedelta(seconds=1), NOW, within) is None
    assert risk_of("dead_lettered", NOW - within, NOW, within) is Risk.OVERDUE
    for done in ("signed", "notified", "notification_failed"):
        assert risk_of(done, NOW - within, NOW, within) is None
    assert risk_of("received", None, NOW, within) is None


async def test_a_replay_publishes_once_however_often_and_concurrently_it_is_asked(
    world: World,
) -> None:
    ref = dead_letter(world, 7)
    first, second = await asyncio.gather(
        world.ops.replay(ref, "ops-demo"), world.ops.replay(ref, "ops-other")
    )
    assert sorted([first.status, second.status]) == ["already_replayed", "replayed"]
    assert len(world.bus.published) == 1
    target, record = world.bus.published[0]
    assert target == topics.CASE_DEIDENTIFIED and record.offset == 7
    again = await world.ops.replay(ref, "ops-other")
    assert again.status == "already_replayed" and len(world.bus.published) == 1
    assert again.letter.replay is not None and again.letter.replay.operator == "ops-demo"
    assert again.letter.case_id == "case-1" and "payload" not in again.letter.model_dump_json()

    listed = await world.ops.dead_letters(50)
    assert (listed.total, listed.not_replayed) == (1, 0)
    assert listed.letters[0].replay is not None


async def test_a_failed_publish_records_nothing_and_the_next_click_replays(world: World) -> None:
    ref = dead_letter(world, 8)
    world.bus.fail = ConnectionError("the broker is down")
    with pytest.raises(ConnectionError):
        await world.ops.replay(ref, "ops-demo")
    assert world.ledger.done == {}
    world.bus.fail = None
    assert (await world.ops.replay(ref, "ops-demo")).status == "replayed"
    assert len(world.bus.published) == 1


async def test_a_replay_names_what_is_wrong(world: World) -> None:
    with pytest.raises(NotFound, match=f"no dead letter at {DLQ}:1:99"):
        await world.ops.replay(LetterRef(DLQ, 1, 99), "ops-demo")
    assert world.ledger.done == {}
    with pytest.raises(InvalidInput, match=r"'secondread\.case\.status\.v1' is not a dead-letter"):
        await world.ops.replay(LetterRef(topics.CASE_STATUS, 0, 1), "ops-demo")
    with pytest.raises(InvalidInput, match="partition and offset"):
        await world.ops.replay(LetterRef(DLQ, -1, 1), "ops-demo")
    assert world.bus.published == []


async def test_a_replayed_message_that_fails_again_is_a_new_letter_naming_its_origin(
    world: World,
) -> None:
    ref = dead_letter(world, 9)
    await world.ops.replay(ref, "ops-demo")
    again = dead_letter(world, 10)
    world.bus.records[again] = Record(
        DLQ, 1, 10, NOW, "case-1", b"{}",
        {**world.bus.records[again].headers, REPLAYED_FROM: f"{DLQ}:1:9"},
    )  # fmt: skip
    out = await world.ops.replay(again, "ops-demo")
    assert out.status == "replayed" and out.letter.replayed_from == f"{DLQ}:1:9"
    assert len(world.bus.published) == 2


async def test_the_consumers_read_raw_records_leniently_and_index_headers_only(
    world: World,
) -> None:
    body = (
        b'{"case_id": "c-9", "state": "parked", "producer": "routing",'
        b' "occurred_at": "2026-12-01T11:00:00Z", "event_id": "e9"}'
    )
    await handlers.status_changed(Record(topics.CASE_STATUS, 2, 5, NOW, "c-9", body, {}), world.ops)
    [row] = await world.view.recent(None, 10)
    assert (row.status.state, row.status.partition, row.status.offset) == ("parked", 2, 5)
    with pytest.raises(UnreadableStatus) as refused:
        await handlers.status_changed(
            Record(topics.CASE_STATUS, 0, 6, NOW, "c-9", b"{oops", {}), world.ops
        )
    assert isinstance(refused.value, PermanentError)  # dead-lettered at once, with its reason

    ref = dead_letter(world, 11, case_id="c-9")
    await handlers.dead_lettered(world.bus.records[ref], world.ops)
    [indexed] = (await world.ops.dead_letters(10)).letters
    assert (indexed.case_id, indexed.source_topic, indexed.attempts) == (
        "c-9",
        topics.CASE_DEIDENTIFIED,
        3,
    )
    assert "never shown" not in indexed.model_dump_json()
