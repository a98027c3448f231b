"""The operations tables on the real PostgreSQL of the local stack: the status view keeps the
later event whatever the delivery order, duplicates and concurrent writers (two replicas); its
reads join routing's due times; a replay is claimed by one request at a time and recorded only
when it was published."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from secondread_routing.ops.domain import LetterRef
from secondread_routing.ops.repository import OpsRepository
from secondread_routing.repository import RoutingRepository
from secondread_routing.settings import RoutingSettings
from secondread_shared import topics
from secondread_shared.casestatus import CaseStatus, latest
from secondread_shared.db import Database
from secondread_shared.deadletters import DeadLetter
from tests.e2e.conftest import running_stack  # noqa: F401  (the fixture: starts the stack)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("running_stack")]

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
DLQ = topics.dlq(topics.CASE_DEIDENTIFIED)


@pytest.fixture
async def repo() -> AsyncIterator[tuple[OpsRepository, str]]:
    db = Database(RoutingSettings().db_dsn)
    await db.open()
    await RoutingRepository(db).migrate()
    run = f"opstest-{uuid.uuid4().hex[:8]}"
    try:
        yield OpsRepository(db), run
    finally:
        async with db.transaction() as conn:
            like = f"{run}%"
            await conn.execute("DELETE FROM ops_case_status WHERE case_id LIKE %s", (like,))
            await conn.execute("DELETE FROM cases WHERE case_id LIKE %s", (like,))
            await conn.execute("DELETE FROM ops_dead_letters WHERE case_id LIKE %s", (like,))
            await conn.execute("DELETE FROM ops_replays WHERE operator LIKE %s", (like,))
        await db.close()


def status(case_id: str, state: str, minutes: int, offset: int) -> CaseStatus:
    at = T0 + timedelta(minutes=minutes, microseconds=offset % 7)
    return CaseStatus(case_id, state, "svc", f"detail {offset}", at, 1, offset, f"e{offset}")


async def test_the_view_keeps_the_later_event_whatever_the_order_and_the_replicas(
    repo: tuple[OpsRepository, str],
) -> None:
    ops, run = repo
    rnd = random.Random(12)
    states = [f"{run}-s{k}" for k in range(3)]  # this run's own states: its rows alone
    events = [
        status(f"{run}-{rnd.randrange(6)}", rnd.choice(states), rnd.randrange(5), offset)
        for offset in range(60)
    ]
    deliveries = events * 2  # every event twice, as after a rebalance
    rnd.shuffle(deliveries)
    half = len(deliveries) // 2

    async def replica(batch: list[CaseStatus]) -> None:
        for s in batch:
            await ops.upsert(s)

    await asyncio.gather(replica(deliveries[:half]), replica(deliveries[half:]))

    rows = {r.status.case_id: r for state in states for r in await ops.recent(state, 1000)}
    expected = latest(events)
    assert {c: r.status for c, r in rows.items()} == expected
    for case_id, row in rows.items():
        assert row.first_seen_at == min(e.occurred_at for e in events if e.case_id == case_id)

    # an older event, delivered late, changes nothing; a later one wins
    some = next(iter(expected.values()))
    assert not await ops.upsert(status(some.case_id, "received", -10, 0))
    newer = CaseStatus(some.case_id, f"{run}-done", "notify", "", some.occurred_at, 1, 1000)
    assert await ops.upsert(newer)
    [row] = await ops.recent(f"{run}-done", 1000)
    assert row.status == newer and row.first_seen_at == T0 - timedelta(minutes=10)


async def test_reads_join_routings_due_time_and_order_as_asked(
    repo: tuple[OpsRepository, str],
) -> None:
    ops, run = repo
    a, b, c = f"{run}-a", f"{run}-b", f"{run}-c"
    sa, sb, sc = f"{run}-assigned", f"{run}-deidentified", f"{run}-signed"
    await ops.upsert(status(a, sa, 1, 1))
    await ops.upsert(status(b, sb, 2, 2))
    await ops.upsert(status(c, sc, 3, 3))
    async with ops.db.transaction() as conn:
        for case_id, hours in ((a, 5), (c, 1)):
            await conn.execute(
                "INSERT INTO cases (case_id, event, subspecialty, rule, priority, due_at, flags,"
                " priors, opinions, state) VALUES (%s, '{}', 'chest', 'r', 'urgent', %s,"
                " '[]', '[]', '[]', 'assigned')",
                (case_id, T0 + timedelta(hours=hours)),
            )
    # (this run's rows are 400 days old: last when newest come first, first otherwise)
    mine = [r for r in await ops.recent(None, 10**6) if r.status.case_id.startswith(run)]
    assert [r.status.case_id for r in mine] == [c, b, a]  # most recently changed first
    due = [r for r in await ops.open_with_due({sc}, 100) if r.status.case_id.startswith(run)]
    assert [(r.status.case_id, r.due_at, r.priority, r.subspecialty) for r in due] == [
        (a, T0 + timedelta(hours=5), "urgent", "chest")
    ]
    waiting = await ops.in_states({sb, sa}, 100)
    assert [r.status.case_id for r in waiting] == [a, b]  # longest unchanged first
    counts = await ops.counts()
    assert (counts[sa], counts[sb], counts[sc]) == (1, 1, 1)


def dead_letter(case_id: str, offset: int) -> DeadLetter:
    return DeadLetter(DLQ, 2, offset, case_id, topics.CASE_DEIDENTIFIED, 0, 5, "routing", 3,
                      "DatabaseError: unavailable", T0, "")  # fmt: skip


async def test_a_replay_is_claimed_once_and_recorded_only_when_published(
    repo: tuple[OpsRepository, str],
) -> None:
    ops, run = repo
    offset = 10**12 + random.randrange(10**9)  # no real letter sits that far
    ref = LetterRef(DLQ, 2, offset)
    await ops.add(dead_letter(f"{run}-d", offset))
    await ops.add(dead_letter(f"{run}-d", offset))  # indexed twice: one row
    assert (await ops.letter(ref)) is not None

    # a claim whose publish failed leaves nothing behind
    with pytest.raises(ConnectionError):
        async with ops.claim(ref, f"{run}-op1", T0):
            raise ConnectionError("the broker is down")
    row = await ops.letter(ref)
    assert row is not None and row.replay is None

    order: list[str] = []

    async def click(who: str) -> None:
        async with ops.claim(ref, who, T0) as claim:
            if claim.previous is None:
                order.append(f"{who} publishes")
                await asyncio.sleep(0.3)  # the other request waits meanwhile
                await claim.published(topics.CASE_DEIDENTIFIED, T0 + timedelta(seconds=1))
            else:
                order.append(f"{who} finds {claim.previous.operator}'s replay")

    await asyncio.gather(click(f"{run}-op1"), click(f"{run}-op2"))
    assert len([o for o in order if o.endswith("publishes")]) == 1, order
    row = await ops.letter(ref)
    assert row is not None and row.replay is not None
    assert row.replay.target_topic == topics.CASE_DEIDENTIFIED
    letters, total, not_replayed = await ops.letters(10000)
    assert any(r.letter.offset == offset and r.replay for r in letters)
    assert total >= 1 and not_replayed <= total
    assert json.dumps(str(row.letter)).count("payload") == 0
