"""Small fakes of the operations page's ports (routing's ``ops`` package), for its use-case and
API tests: a status view, a dead-letter index, a replay ledger that lets one claim hold a letter
at a time (as a row lock does), and a bus that records what it replays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from secondread_routing.ops.domain import CaseRow, LetterRef, LetterRow, Policy, Replay
from secondread_routing.ops.service import OpsService
from secondread_shared import broker as br
from secondread_shared import topics
from secondread_shared.casestatus import CaseStatus, latest
from secondread_shared.deadletters import DeadLetter
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
    fail: BaseException | None = None
    """Raised by the next replays, while set."""

    async def fetch(self, ref: LetterRef) -> Record | None:
        await asyncio.sleep(0)  # let a concurrent request run in between
        return self.records.get(ref)

    async def replay(self, letter: Record) -> str:
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
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


def new_world() -> World:
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


def dead_letter(world: World, offset: int, case_id: str = "case-1") -> LetterRef:
    """A dead letter of ``case.deidentified`` on the fake bus (not indexed yet)."""
    ref = LetterRef(DLQ, 1, offset)
    world.bus.records[ref] = Record(
        DLQ, 1, offset, NOW, case_id, b'{"payload": "never shown"}',
        {br.H_TOPIC: topics.CASE_DEIDENTIFIED, br.H_REASON: "DatabaseError: unavailable",
         br.H_SERVICE: "routing", br.H_ATTEMPTS: "3", br.H_CASE: case_id},
    )  # fmt: skip
    return ref
