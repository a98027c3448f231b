"""What makes ingest safe as N replicas, against the real PostgreSQL: the spool backlog every
replica reports (a hospital's cases wait while a live replica still holds instances of it) and
the lease on a case's prior fetch (one replica fetches; a dead one's fetch is taken over)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from secondread_ingest.desk import CaseDesk
from secondread_ingest.repository import IngestRepository
from secondread_ingest.settings import IngestSettings
from secondread_ingest.spool import Spool
from secondread_shared.db import Database
from tests.e2e.conftest import running_stack  # noqa: F401  (the fixture: starts the stack)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("running_stack")]


@pytest.fixture
async def repo() -> AsyncIterator[IngestRepository]:
    db = Database(IngestSettings().db_dsn)
    await db.open()
    try:
        yield IngestRepository(db)
    finally:
        await db.close()


async def test_a_live_replicas_backlog_holds_the_hospital_and_a_stale_one_does_not(
    repo: IngestRepository,
) -> None:
    a, b = f"test-a-{uuid.uuid4().hex[:6]}", f"test-b-{uuid.uuid4().hex[:6]}"
    h1, h2 = f"h1-{uuid.uuid4().hex[:6]}", f"h2-{uuid.uuid4().hex[:6]}"
    try:
        await repo.report_backlog(a, {h1: 3, h2: 0})
        await repo.report_backlog(b, {h2: 1})
        busy = await repo.busy_hospitals(live_within_s=30)
        assert {h1, h2} <= busy
        await repo.report_backlog(b, {h2: 0})  # replica b stored what it held
        busy = await repo.busy_hospitals(live_within_s=30)
        assert h1 in busy and h2 not in busy
        await asyncio.sleep(1.2)  # replica a stops reporting (it died)
        assert h1 not in await repo.busy_hospitals(live_within_s=1)
    finally:
        await repo.report_backlog(a, {})
        await repo.report_backlog(b, {})


async def status(repo: IngestRepository, case_id: str) -> str:
    async with repo.db.transaction() as conn:
        cur = await conn.execute("SELECT status FROM cases WHERE case_id = %s", (case_id,))
        row = await cur.fetchone()
    assert row is not None
    return str(row["status"])


async def test_one_replica_holds_a_prior_fetch_until_its_lease_runs_out(
    repo: IngestRepository,
) -> None:
    case_id = f"test-priors-{uuid.uuid4().hex[:8]}"
    async with repo.db.transaction() as conn:  # no instances: the live ingest leaves it alone
        await conn.execute(
            "INSERT INTO cases (case_id, hospital_id, status, intake)"
            " VALUES (%s, 'demo', 'complete', NULL)",
            (case_id,),
        )
    try:
        claims = await asyncio.gather(*(repo.claim_priors(case_id, 1.0) for _ in range(4)))
        assert sorted(claims) == [False, False, False, True]  # one replica wins
        await repo.release_expired_priors()  # a live lease is kept
        assert await status(repo, case_id) == "fetching_priors"
        assert not await repo.claim_priors(case_id, 1.0)
        await asyncio.sleep(1.2)  # the winner died: its lease ran out
        await repo.release_expired_priors()
        assert await status(repo, case_id) == "complete"  # to be fetched again
        assert await repo.claim_priors(case_id, 1.0)  # taken over
        await repo.end_priors(case_id, [])
        assert not await repo.claim_priors(case_id, 1.0)  # done: nobody fetches again
    finally:
        async with repo.db.transaction() as conn:
            await conn.execute("DELETE FROM cases WHERE case_id = %s", (case_id,))


async def test_a_spooled_instance_that_keeps_failing_stops_holding_its_hospital(
    tmp_path: Path,
) -> None:
    """Past ``spool_stall_after`` failed attempts the entry leaves the hospital's backlog (its
    other cases go on) but is still retried, and stored once storage answers again."""
    settings = IngestSettings(spool_stall_after=2, spool_dir=tmp_path / "spool")
    spool = Spool(settings.spool_path)
    spool.open()
    outage = {"on": True}
    stored: list[bytes] = []

    class Desk(CaseDesk):
        async def accept(self, hospital_id: str, data: bytes, **_: object) -> Any:
            if outage["on"]:
                raise RuntimeError("storage is down")
            stored.append(data)

    desk = Desk(settings=settings, repo=None, store=None, spool=spool, pacs=None,  # type: ignore[arg-type]
                wake_relay=lambda: None)  # fmt: skip
    entry = spool.write("demo", b"instance bytes")
    desk._count("demo", +1)
    task = asyncio.create_task(desk._move(entry))
    for _ in range(100):
        if desk.stalled:
            break
        await asyncio.sleep(0.05)
    assert desk.stalled == 1 and desk.backlog() == 0  # no longer holds the hospital back
    assert not task.done() and spool.pending()  # still in the spool, still retried
    outage["on"] = False
    await asyncio.wait_for(task, timeout=10)
    assert stored == [b"instance bytes"] and desk.stalled == 0 and not spool.pending()
