"""The operations use cases with small fakes: cases by state, the stuck and at-risk rules, and a
replay that happens once however often it is asked for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from secondread_routing.ops.domain import (
    CaseRow,
    LetterRef,
    LetterRow,
    Policy,
    Replay,
    Risk,
    risk_of,
)
from secondread_routing.ops.errors import InvalidInput, NotFound
from secondread_routing.ops.service import OpsService
from secondread_shared import broker as br
from secondread_shared import topics
from secondread_shared.casestatus import CaseStatus, latest
from secondread_shared.deadletters import REPLAYED_FROM, DeadLetter
from secondread_shared.records import Record

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DLQ = topics.dlq(topics.CASE_DEIDENTIFIED)


class Clock:
    def now(self) -> datetime:
        return NOW


@dataclass
class FakeView:
    statuses: list[CaseStatus] = field(default_factory=list)
    due: dict[str, datetime] = field(default_factory=dict)

    def _rows(self) -> list[CaseRow]:
        first: dict[str, datetime] = {}
        for s in self.statuses:
            first[s.case_id] = min(first.get(s.case_id, s.occurred_at), s.occurred_at)
        return [
            CaseRow(s, first[c], due_at=self.due.get(c), priority="routine")
            for c, s in latest(self.statuses).items()
        ]

    async def upsert(self, status: CaseStatus) -> bool:
        before = latest(self.statuses).get(status.case_id)
        self.statuses.append(status)
        return latest(self.statuses)[status.case_id] != before

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self._rows():
            out[r.status.state] = out.get(r.status.state, 0) + 1
        return out

    async def recent(self, state: str | None, limit: int) -> list[CaseRow]:
        rows = [r for r in self._rows() if state is None or r.status.state == state]
        return sorted(rows, key=lambda r: r.status.order, reverse=True)[:limit]

    async def in_states(self, states: Collection[str], limit: int) -> list[CaseRow]:
        rows = [r for r in self._rows() if r.status.state in states]
        return sorted(rows, key=lambda r: r.status.order)[:limit]

    async def open_with_due(self, exclude: Collection[str], limit: int) -> list[CaseRow]:
        rows = [r for r in self._rows() if r.due_at and r.status.state not in exclude]
        return sorted(rows, key=lambda r: r.due_at or NOW)[:limit]


@dataclass
class FakeLedger:
    """One holder per letter at a time, recorded only when the block ends cleanly (as the
    PostgreSQL ledger: a row lock, a transaction)."""

    done: dict[LetterRef, Replay] = field(default_factory=dict)
    locks: dict[LetterRef, asyncio.Lock] = field(default_factory=dict)

    @asynccontextmanager
    async def claim(self, ref: LetterRef, operator: str, at: datetime) -> AsyncIterator[Claim]:
        async with self.locks.setdefault(ref, asyncio.Lock()):
            claim = Claim(ref, operator, at, self.done.get(ref))
            yield claim
            if claim.replay is not None:
                self.done[ref] = claim.replay


@dataclass
class Claim:
    ref: LetterRef
    operator: str
    at: datetime
    previous: Replay | None
    replay: Replay | None = None

    async def published(self, target_topic: str, at: datetime) -> Replay:
        self.replay = Replay(self.ref, self.operator, self.at, target_topic, at)
        return self.replay


@dataclass
class FakeLetters:
    index: dict[LetterRef, DeadLetter] = field(default_factory=dict)
    ledger: FakeLedger | None = None

    async def add(self, letter: DeadLetter) -> None:
        self.index.setdefault(LetterRef(letter.topic, letter.partition, letter.offset), letter)

    def _row(self, ref: LetterRef) -> LetterRow:
        return LetterRow(self.index[ref], self.ledger.done.get(ref) if self.ledger else None)

    async def letters(self, limit: int) -> tuple[list[LetterRow], int, int]:
        rows = [self._row(r) for r in self.index]
        return rows[:limit], len(rows), sum(1 for r in rows if r.replay is None)

    async def letter(self, ref: LetterRef) -> LetterRow | None:
        return self._row(ref) if ref in self.index else None


@dataclass
class FakeBus:
    records: dict[LetterRef, Record] = field(default_factory=dict)
    published: list[tuple[str, Record]] = field(default_factory=list)
    fail: bool = False

    async def fetch(self, ref: LetterRef) -> Record | None:
        await asyncio.sleep(0)  # let a concurrent request run in between
        return self.records.get(ref)

    async def replay(self, letter: Record) -> str:
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("the broker is down")
        target = letter.headers[br.H_TOPIC]
        self.published.append((target, letter))
        return target


@dataclass
class World:
    view: FakeView
    letters: FakeLetters
    ledger: FakeLedger
    bus: FakeBus
    ops: OpsService


@pytest.fixture
def world() -> World:
    view, ledger, bus = FakeView(), FakeLedger(), FakeBus()
    letters = FakeLetters(ledger=ledger)
    ops = OpsService(
        view=view,
        letters=letters,
        ledger=ledger,
        bus=bus,
        clock=Clock(),
        policy=Policy(stuck_after=timedelta(minutes=15), at_risk_within=timedelta(hours=6)),
    )
    return World(view, letters, ledger, bus, ops)


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


def dead_letter(world: World, offset: int, case_id: str = "case-1") -> LetterRef:
    ref = LetterRef(DLQ, 1, offset)
    world.bus.records[ref] = Record(
        DLQ, 1, offset, NOW, case_id, b'{"payload": "never shown"}',
        {br.H_TOPIC: topics.CASE_DEIDENTIFIED, br.H_REASON: "DatabaseError: unavailable",
         br.H_SERVICE: "routing", br.H_ATTEMPTS: "3", br.H_CASE: case_id},
    )  # fmt: skip
    return ref


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
    world.bus.fail = True
    with pytest.raises(ConnectionError):
        await world.ops.replay(ref, "ops-demo")
    assert world.ledger.done == {}
    world.bus.fail = False
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
