"""The outbox relay on the real PostgreSQL of the local stack, with a small fake broker: two relays
never publish a row twice, one case's events keep their order, a poison row is parked without
blocking the rows behind it, and a broker outage charges no row."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from psycopg import sql
from pydantic import SecretStr

from secondread_shared import outbox
from secondread_shared.db import Database
from secondread_shared.events import CaseState, CaseStatusChanged
from secondread_shared.settings import CommonSettings
from tests.e2e.conftest import running_stack  # noqa: F401  (the fixture: starts the stack)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("running_stack")]


@dataclass
class FakeBroker:
    """Records what is published; raises for events whose case id is in ``poison``."""

    published: list[str] = field(default_factory=list)
    poison: set[str] = field(default_factory=set)
    down: bool = False
    delay_s: float = 0.0

    async def publish(self, message: Any, **_: Any) -> None:
        if self.down:
            raise KafkaConnectionError("broker down")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if message.case_id in self.poison:
            raise ValueError("the broker refuses this one")
        self.published.append(message.event_id)


class Settings(CommonSettings):
    # The deidentify role has no outbox of its own: its schema takes a throwaway table.
    db_user: str = "deidentify"
    db_password: SecretStr = SecretStr("deidentify-local")


@pytest.fixture
async def table() -> AsyncIterator[tuple[Database, str]]:
    name = f"outbox_test_{uuid.uuid4().hex[:8]}"
    db = Database(Settings().db_dsn)
    await db.open(outbox.migrations(name))
    try:
        yield db, name
    finally:
        async with db.transaction() as conn:
            await conn.execute(sql.SQL("DROP TABLE {t}").format(t=sql.Identifier(name)))
        await db.close()


def status(case_id: str, n: int) -> CaseStatusChanged:
    return CaseStatusChanged(
        case_id=case_id, producer="test", state=CaseState.RECEIVED, detail=f"step {n}"
    )


async def write(db: Database, name: str, events: list[CaseStatusChanged]) -> None:
    async with db.transaction() as conn:
        for e in events:  # one row at a time, as separate writes of a service would be
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {t} (event_id, case_id, topic, payload) VALUES (%s, %s, %s, %s)"
                ).format(t=sql.Identifier(name)),
                (e.event_id, e.case_id, e.TOPIC, e.model_dump_json()),
            )


async def test_two_relays_publish_each_row_once_and_each_case_in_order(
    table: tuple[Database, str],
) -> None:
    db, name = table
    cases = [f"case-{i}" for i in range(8)]
    # case-x's step 0 is the last row of the first relay's batch of 7 and its step 1 the first
    # of the second's: without the order rule, the second relay would publish step 1 first.
    events = [status(f"case-{i}", 0) for i in range(6)] + [status("case-x", 0)]
    events += [status("case-x", 1)] + [status(c, n) for n in range(1, 5) for c in cases]
    cases.append("case-x")
    await write(db, name, events)
    broker = FakeBroker(delay_s=0.002)
    relays = [outbox.OutboxRelay(db, broker, table=name) for _ in range(2)]  # type: ignore[arg-type]

    async def run(relay: outbox.OutboxRelay) -> None:
        while await relay.drain(limit=7):
            pass

    for _ in range(10):  # until both find nothing left
        await asyncio.gather(*(run(r) for r in relays))
    assert sorted(broker.published) == sorted(e.event_id for e in events)  # each exactly once
    order = {e.event_id: (e.case_id, int(e.detail.split()[-1])) for e in events}
    for case in cases:
        steps = [order[eid][1] for eid in broker.published if order[eid][0] == case]
        assert steps == sorted(steps), case


async def test_a_poison_row_is_parked_and_never_blocks_the_rows_behind_it(
    table: tuple[Database, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, name = table
    monkeypatch.setattr(outbox, "BACKOFF_S", 0.0)
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 3)
    bad, good = status("case-bad", 0), status("case-good", 0)
    later_bad = status("case-bad", 1)
    await write(db, name, [bad, later_bad, good])
    broker = FakeBroker(poison={"case-bad"})
    relay = outbox.OutboxRelay(db, broker, table=name)  # type: ignore[arg-type]
    for _ in range(5):
        await relay.drain()
    assert broker.published == [good.event_id]
    rows = await outbox.parked(db, name)
    assert [r["event_id"] for r in rows] == [bad.event_id]
    assert rows[0]["attempts"] == 3 and "ValueError" in rows[0]["last_error"]
    # the parked row no longer holds back the later row of its case: it is tried on its own
    async with db.transaction() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT attempts FROM {t} WHERE event_id = %s").format(t=sql.Identifier(name)),
            (later_bad.event_id,),
        )
        row = await cur.fetchone()
    assert row is not None and row["attempts"] >= 1


async def test_a_broker_outage_charges_no_row(table: tuple[Database, str]) -> None:
    db, name = table
    events = [status("case-1", 0), status("case-2", 0)]
    await write(db, name, events)
    broker = FakeBroker(down=True)
    relay = outbox.OutboxRelay(db, broker, table=name)  # type: ignore[arg-type]
    for _ in range(3):
        with pytest.raises(KafkaConnectionError):
            await relay.drain()
    async with db.transaction() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT attempts, parked_at FROM {t}").format(t=sql.Identifier(name))
        )
        rows = await cur.fetchall()
    assert all(r["attempts"] == 0 and r["parked_at"] is None for r in rows)
    broker.down = False
    assert await relay.drain() == 2
    assert json.dumps(sorted(broker.published)) == json.dumps(sorted(e.event_id for e in events))
