"""The delivery queue on the real PostgreSQL of the local stack: two workers never claim one
delivery, and a claim left by a worker that died between send and mark is taken up once more,
with the same idempotency key."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest

from secondread_notify.delivery import Recipient
from secondread_notify.repository import MIGRATIONS, NotifyRepository
from secondread_notify.settings import NotifySettings
from secondread_shared.db import Database
from secondread_shared.events import ObjectRef, ReportSigned
from tests.e2e.conftest import running_stack  # noqa: F401  (the fixture: starts the stack)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("running_stack")]


def signed(report_id: str) -> ReportSigned:
    body = json.dumps({"report_id": report_id}).encode()
    return ReportSigned(
        case_id=f"case-{report_id}",
        producer="test",
        report_id=report_id,
        radiologist_id="rad",
        signed_at=datetime.now(UTC),
        key_id="k",
        signature="c2ln",
        report=ObjectRef(bucket="b", key="k", sha256="0" * 64, size=len(body)),
        assessment="-",
    )


async def test_claims_are_exclusive_and_an_expired_claim_is_taken_up_with_the_same_key() -> None:
    db = Database(NotifySettings().db_dsn)
    await db.open(MIGRATIONS)
    repo = NotifyRepository(db)
    report_id = f"test-{uuid.uuid4().hex[:12]}"
    # A channel of its own, so that the running notify's worker never claims the test's row.
    channel = f"test-{report_id}"
    people = [Recipient("physician", "Dr R", "r@example.org", channel=channel)]
    try:
        assert await repo.enqueue(signed(report_id), people) == 1
        assert await repo.enqueue(signed(report_id), people) == 0  # redelivered: nothing new

        async def claim() -> list[str]:
            rows = await repo.claim_due(limit=100, lease_s=1.0, channels=[channel])
            return [d.idempotency_key for d in rows if d.report_id == report_id]

        # two workers at once: one of them gets it
        first, second = await asyncio.gather(claim(), claim())
        assert sorted([first, second], key=len) == [[], [f"{report_id}.{channel}.physician"]]
        assert await claim() == []  # claimed: nobody else takes it while the claim lasts

        # the worker "dies" after sending, before marking: after the lease, one resend
        await asyncio.sleep(1.2)
        [again] = await repo.claim_due(limit=100, lease_s=30.0, channels=[channel])
        assert again.idempotency_key == f"{report_id}.{channel}.physician" and again.attempts == 2
        await repo.delivered(again, [])
        assert await claim() == []
        [row] = await repo.deliveries(report_id)
        assert row["status"] == "delivered" and row["attempts"] == 2
    finally:
        async with db.transaction() as conn:
            await conn.execute("DELETE FROM deliveries WHERE report_id = %s", (report_id,))
        await db.close()


async def test_a_report_waits_for_its_contacts_and_is_parked_once_across_replicas() -> None:
    db = Database(NotifySettings().db_dsn)
    await db.open(MIGRATIONS)
    repo, other = NotifyRepository(db), NotifyRepository(db)
    report_id = f"test-{uuid.uuid4().hex[:12]}"
    event = signed(report_id)
    try:
        await repo.await_contacts(event)
        await repo.await_contacts(event)  # redelivered: kept once
        waiting = [r for r in await repo.awaiting() if r["report_id"] == report_id]
        assert [r["status"] for r in waiting] == ["waiting"]
        assert report_id not in {e.report_id for e, _ in await repo.contacts_arrived(1000)}
        assert report_id not in {e.report_id for e in await repo.waited_too_long(3600, 1000)}
        await asyncio.sleep(0.1)
        [late] = [e for e in await repo.waited_too_long(0.05, 1000) if e.report_id == report_id]
        assert late == event
        # two replicas park it at once: one of them does (and writes the events)
        parked = await asyncio.gather(
            repo.park_waiting(event, "no contacts", []), other.park_waiting(event, "x", [])
        )
        assert sorted(parked) == [False, True]
        [row] = [r for r in await repo.awaiting() if r["report_id"] == report_id]
        assert row["status"] == "parked" and row["detail"] in {"no contacts", "x"}
        # its contacts after all (a channel the running notify has not configured, so that
        # it queues nothing real): found with them, and queueing ends the wait
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO contacts (case_id, hospital_id, physician_name, physician_email,"
                " delivery_channels) VALUES (%s, 'test', 'Dr R', 'r@example.org', '[\"none\"]')",
                (event.case_id,),
            )
        arrived = {e.report_id: c for e, c in await repo.contacts_arrived(1000)}
        if report_id in arrived:  # else the running notify's worker took it first
            assert arrived[report_id]["physician_email"] == "r@example.org"
            assert await repo.enqueue(event, []) == 0
        for _ in range(50):
            if report_id not in {r["report_id"] for r in await repo.awaiting()}:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the report still waits though its contacts are in")
    finally:
        async with db.transaction() as conn:
            await conn.execute("DELETE FROM awaiting_contacts WHERE report_id = %s", (report_id,))
            await conn.execute("DELETE FROM contacts WHERE case_id = %s", (event.case_id,))
        await db.close()
