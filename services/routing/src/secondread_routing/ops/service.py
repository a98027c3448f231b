"""The operations use cases: keep the status view and the dead-letter index, show cases by
state (with the stuck and at-risk ones) and dead letters, and replay a dead letter once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from secondread_routing.ops.domain import (
    REPORT_DONE_STATES,
    CaseRow,
    CasesOverview,
    CaseView,
    LetterRef,
    LetterRow,
    LettersOverview,
    Policy,
    ReplayOutcome,
    case_view,
    letter_view,
)
from secondread_routing.ops.errors import InvalidInput, NotFound
from secondread_routing.ops.ports import Clock, LetterBus, LetterIndex, ReplayLedger, StatusView
from secondread_shared import casestatus, deadletters
from secondread_shared.casestatus import CaseStatus
from secondread_shared.deadletters import DeadLetter
from secondread_shared.logging import get_logger

log = get_logger(__name__)

SCAN_LIMIT = 1000
"""At most this many candidates are read for the stuck and at-risk lists."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OpsService:
    def __init__(
        self,
        *,
        view: StatusView,
        letters: LetterIndex,
        ledger: ReplayLedger,
        bus: LetterBus,
        clock: Clock,
        policy: Policy,
    ) -> None:
        self.view = view
        self.letters = letters
        self.ledger = ledger
        self.bus = bus
        self.clock = clock
        self.policy = policy

    async def status_changed(self, status: CaseStatus) -> bool:
        """One event of the status topic into the view (idempotent, any order)."""
        return await self.view.upsert(status)

    async def dead_lettered(self, letter: DeadLetter) -> None:
        """One dead letter's headers into the index (idempotent)."""
        await self.letters.add(letter)

    async def cases(
        self, *, state: str | None, stuck_after: timedelta | None, limit: int
    ) -> CasesOverview:
        now = self.clock.now()
        after = stuck_after or self.policy.stuck_after
        within = self.policy.at_risk_within

        def view(rows: list[CaseRow]) -> list[CaseView]:
            return [case_view(r, now, after, within) for r in rows]

        counts = await self.view.counts()
        recent = view(await self.view.recent(state, limit))
        automated = await self.view.in_states(casestatus.AUTOMATED_STATES, SCAN_LIMIT)
        stuck = [c for c in view(automated) if c.stuck][:limit]
        due = await self.view.open_with_due(REPORT_DONE_STATES, SCAN_LIMIT)
        at_risk = [c for c in view(due) if c.risk is not None][:limit]
        return CasesOverview(
            generated_at=now,
            stuck_after_minutes=after.total_seconds() / 60,
            at_risk_hours=within.total_seconds() / 3600,
            state=state,
            counts=counts,
            total=sum(counts.values()),
            cases=recent,
            at_risk=at_risk,
            stuck=stuck,
        )

    async def dead_letters(self, limit: int) -> LettersOverview:
        rows, total, open_ = await self.letters.letters(limit)
        return LettersOverview(
            generated_at=self.clock.now(),
            total=total,
            not_replayed=open_,
            letters=[letter_view(r) for r in rows],
        )

    async def replay(self, ref: LetterRef, operator: str) -> ReplayOutcome:
        """Publish the dead letter at ``ref`` again on its source topic, once: a second request
        (a second click, another replica, another operator) answers with the first replay."""
        if not deadletters.is_dlq_topic(ref.topic):
            raise InvalidInput(
                f"topic {ref.topic!r} is not a dead-letter topic (a platform topic ending in"
                " .dlq, e.g. secondread.case.deidentified.v1.dlq)"
            )
        if ref.partition < 0 or ref.offset < 0:
            raise InvalidInput("partition and offset must be 0 or more")
        async with self.ledger.claim(ref, operator, self.clock.now()) as claim:
            if claim.previous is not None:
                row = await self._row(ref)
                return ReplayOutcome(status="already_replayed", letter=letter_view(row))
            record = await self.bus.fetch(ref)
            if record is None:
                raise NotFound(f"there is no dead letter at {ref}")
            letter = deadletters.letter_of(record)
            await self.letters.add(letter)
            target = await self.bus.replay(record)
            replay = await claim.published(target, self.clock.now())
        log.info(
            "dead_letter_replayed",
            dlq=str(ref),
            topic=target,
            operator=operator,
            case_id=letter.case_id,
        )
        return ReplayOutcome(status="replayed", letter=letter_view(LetterRow(letter, replay)))

    async def _row(self, ref: LetterRef) -> LetterRow:
        row = await self.letters.letter(ref)
        if row is None:  # replayed, but not indexed here: the record is still on Kafka
            record = await self.bus.fetch(ref)
            if record is None:
                raise NotFound(f"there is no dead letter at {ref}")
            await self.letters.add(deadletters.letter_of(record))
            row = await self.letters.letter(ref)
            if row is None:
                raise NotFound(f"there is no dead letter at {ref}")
        return row
