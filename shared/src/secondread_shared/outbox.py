"""Transactional outbox: events are written in the same database transaction as the state they
announce, and a relay publishes them afterwards.

At least once: a crash after publishing and before marking republishes the same event (same
``event_id``), which consumers deduplicate. The W3C trace context of the writer is stored with
each row, so the published event continues the writer's trace.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import psycopg
from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from secondread_shared.broker import publish_event
from secondread_shared.db import Database
from secondread_shared.events import ALL_EVENTS, Event
from secondread_shared.logging import bind_case, get_logger, unbind_case

log = get_logger(__name__)

MIGRATIONS = (
    """
    CREATE TABLE IF NOT EXISTS outbox (
        id           bigserial PRIMARY KEY,
        event_id     text NOT NULL UNIQUE,
        case_id      text NOT NULL,
        topic        text NOT NULL,
        payload      jsonb NOT NULL,
        trace        jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at   timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz
    )
    """,
    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE published_at IS NULL",
)

_BY_TOPIC: dict[str, type[Event]] = {cls.TOPIC: cls for cls in ALL_EVENTS}
_PROPAGATOR = TraceContextTextMapPropagator()


def capture_trace() -> dict[str, str]:
    """The current W3C trace context as a carrier dict."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


async def enqueue(
    conn: psycopg.AsyncConnection[Any], events: Sequence[Event], trace: dict[str, str] | None = None
) -> None:
    """Add ``events`` to the outbox inside the caller's transaction."""
    carrier = json.dumps(trace if trace is not None else capture_trace())
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO outbox (event_id, case_id, topic, payload, trace)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
            [(e.event_id, e.case_id, e.TOPIC, e.model_dump_json(), carrier) for e in events],
        )


class OutboxRelay:
    """Publishes pending outbox rows in order; wakes at once after :meth:`wake`."""

    def __init__(self, db: Database, broker: KafkaBroker, poll_s: float = 0.5) -> None:
        self.db = db
        self.broker = broker
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def drain(self, limit: int = 100) -> int:
        """Publish pending events once; return how many were published."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT id, topic, payload, trace FROM outbox WHERE published_at IS NULL"
                " ORDER BY id LIMIT %s",
                (limit,),
            )
            rows = await cur.fetchall()
        for row in rows:
            event = _BY_TOPIC[str(row["topic"])].model_validate(row["payload"])
            trace: Any = row["trace"]
            token = otel_context.attach(_PROPAGATOR.extract(trace))
            bind_case(event.case_id)
            try:
                await publish_event(self.broker, event)
            finally:
                unbind_case()
                otel_context.detach(token)
            async with self.db.transaction() as conn:
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = %s", (row["id"],)
                )
        return len(rows)

    async def _run(self) -> None:
        while True:
            try:
                while await self.drain():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_publish_failed", error=type(exc).__name__)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            except TimeoutError:
                pass
            self._wake.clear()
