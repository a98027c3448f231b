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
