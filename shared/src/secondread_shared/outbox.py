"""Transactional outbox: events are written in the same database transaction as the state they
announce, and a relay publishes them afterwards.

At least once: a crash after publishing and before marking republishes the same event (same
``event_id``), which consumers deduplicate. The W3C trace context of the writer is stored with
each row, so the published event continues the writer's trace.

Safe with N replicas: a relay claims rows with ``FOR UPDATE SKIP LOCKED``, so two relays never
publish the same row at once, and it leaves a row whose case has an earlier row still pending
(claimed by the other relay, or waiting for a retry), so one case's events go out in order.

A row that fails on its own (its payload does not validate, the broker refuses the message) is
retried with exponential backoff and parked after :data:`MAX_ATTEMPTS`, with its reason; a parked
row never blocks the rows behind it, and :func:`parked` lists them. When the broker itself is
unavailable nothing is charged to the rows: the relay waits and tries again.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import psycopg
from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerClosed
from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from psycopg import sql

from secondread_shared.broker import publish_event
from secondread_shared.db import Database
from secondread_shared.events import ALL_EVENTS, Event
from secondread_shared.logging import bind_case, get_logger, unbind_case
from secondread_shared.loops import DrainLoop

log = get_logger(__name__)

MAX_ATTEMPTS = 8
"""Attempts of a row that fails on its own before it is parked."""
BACKOFF_S = 1.0
"""The first retry's delay; each further one doubles, up to :data:`BACKOFF_MAX_S`."""
BACKOFF_MAX_S = 300.0


def migrations(table: str = "outbox") -> tuple[str, ...]:
    """The statements that create (or bring up to date) an outbox table named ``table``."""
    return (
        f"""
        CREATE TABLE IF NOT EXISTS {table} (
            id           bigserial PRIMARY KEY,
            event_id     text NOT NULL UNIQUE,
            case_id      text NOT NULL,
            topic        text NOT NULL,
            payload      jsonb NOT NULL,
            trace        jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            created_at   timestamptz NOT NULL DEFAULT now(),
            published_at timestamptz
        )
        """,
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0",
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz",
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS last_error text NOT NULL DEFAULT ''",
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS parked_at timestamptz",
        f"CREATE INDEX IF NOT EXISTS {table}_pending ON {table} (id) WHERE published_at IS NULL",
        f"CREATE INDEX IF NOT EXISTS {table}_pending_case ON {table} (case_id, id)"
        " WHERE published_at IS NULL AND parked_at IS NULL",
    )


MIGRATIONS = migrations()

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


def broker_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the broker cannot be reached (nobody's row is at fault)."""
    if isinstance(exc, KafkaError):
        return bool(exc.retriable) or isinstance(exc, KafkaTimeoutError | ProducerClosed)
    return isinstance(exc, OSError | TimeoutError)


async def parked(db: Database, table: str = "outbox") -> list[dict[str, Any]]:
    """The parked rows, oldest first: id, event_id, case_id, topic, attempts, last_error."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            sql.SQL(
                "SELECT id, event_id, case_id, topic, attempts, last_error, parked_at FROM {t}"
                " WHERE parked_at IS NOT NULL AND published_at IS NULL ORDER BY id"
            ).format(t=sql.Identifier(table))
        )
        return list(await cur.fetchall())


class OutboxRelay:
    """Publishes pending outbox rows in order; wakes at once after :meth:`wake`.

    Parameters
    ----------
    db, broker
        The service's database and broker.
    poll_s
        How long to wait for :meth:`wake` between drains.
    table
        The outbox table (``outbox``).
    """

    def __init__(
        self, db: Database, broker: KafkaBroker, poll_s: float = 0.5, *, table: str = "outbox"
    ) -> None:
        self.db = db
        self.broker = broker
        self.poll_s = poll_s
        self.table = table
        self._loop = DrainLoop(
            self.drain, poll_s=poll_s, name="outbox-relay", event="outbox_publish_failed"
        )
        self.wake, self.start, self.stop = self._loop.wake, self._loop.start, self._loop.stop

    async def drain(self, limit: int = 100) -> int:
        """Claim up to ``limit`` due rows and publish them; return how many were published.

        Raises what the broker raised when it is unavailable (nothing is charged to the rows).
        """
        t = sql.Identifier(self.table)
        published = 0
        unavailable: Exception | None = None
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                sql.SQL(
                    "SELECT id, case_id, topic, payload, trace, attempts FROM {t} o"
                    " WHERE published_at IS NULL AND parked_at IS NULL"
                    " AND (next_attempt_at IS NULL OR next_attempt_at <= now())"
                    " AND NOT EXISTS (SELECT 1 FROM {t} e WHERE e.case_id = o.case_id"
                    " AND e.id < o.id AND e.published_at IS NULL AND e.parked_at IS NULL)"
                    " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
                ).format(t=t),
                (limit,),
            )
            rows = await cur.fetchall()
            blocked: set[str] = set()
            for row in rows:
                case_id = str(row["case_id"])
                if case_id in blocked:
                    continue  # an earlier row of this case failed in this drain: keep the order
                try:
                    await self._publish(row)
                except Exception as exc:
                    if broker_unavailable(exc):
                        unavailable = exc  # keep what was published; raise after the commit
                        break
                    blocked.add(case_id)
                    await self._failed(conn, row, exc)
                    continue
                await conn.execute(
                    sql.SQL("UPDATE {t} SET published_at = now() WHERE id = %s").format(t=t),
                    (row["id"],),
                )
                published += 1
        if unavailable is not None:
            raise unavailable
        return published

    async def _publish(self, row: dict[str, Any]) -> None:
        cls = _BY_TOPIC.get(str(row["topic"]))
        if cls is None:
            raise UnknownTopic(f"no event type is published on {row['topic']}")
        event = cls.model_validate(row["payload"])
        token = otel_context.attach(_PROPAGATOR.extract(row["trace"]))
        bind_case(event.case_id)
        try:
            await publish_event(self.broker, event)
        finally:
            unbind_case()
            otel_context.detach(token)

    async def _failed(
        self, conn: psycopg.AsyncConnection[Any], row: dict[str, Any], exc: Exception
    ) -> None:
        attempts = int(row["attempts"]) + 1
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        delay = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (attempts - 1)) * random.uniform(0.8, 1.2)
        park = attempts >= MAX_ATTEMPTS
        await conn.execute(
            sql.SQL(
                "UPDATE {t} SET attempts = %s, last_error = %s,"
                " next_attempt_at = now() + make_interval(secs => %s),"
                " parked_at = CASE WHEN %s THEN now() END WHERE id = %s"
            ).format(t=sql.Identifier(self.table)),
            (attempts, reason, delay, park, row["id"]),
        )
        log.warning(
            "outbox_row_parked" if park else "outbox_row_failed",
            outbox_id=row["id"],
            topic=row["topic"],
            attempts=attempts,
            error=type(exc).__name__,
        )


class UnknownTopic(Exception):
    """An outbox row names a topic no event type is published on."""
