"""The task record of each case, in the spirit of mercure's task table: per case and stage
(the service and the topic it consumes), its state, how often it was tried, when it is tried
next and its last error.

Every service keeps its own rows (table ``case_tasks`` in its schema; the PHI-zone services'
errors stay in the PHI zone), written by the broker's retry middleware
(:class:`secondread_shared.broker.DeadLetterMiddleware`): ``running`` when a message of the
case is taken, ``retrying`` with the next attempt's time after a failed attempt, ``done`` or
``dead_lettered`` at the end. ``secondread tasks`` reads them across the services;
``secondread cases --stuck`` lists the cases that made no progress.

Writing the record never fails a message: an error here is logged and the handler goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from secondread_shared.db import Database
from secondread_shared.logging import get_logger

log = get_logger(__name__)

MIGRATIONS = (
    """
    CREATE TABLE IF NOT EXISTS case_tasks (
        case_id       text NOT NULL,
        stage         text NOT NULL,
        state         text NOT NULL,
        attempts      integer NOT NULL DEFAULT 0,
        last_error    text NOT NULL DEFAULT '',
        next_retry_at timestamptz,
        started_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (case_id, stage)
    )
    """,
    "CREATE INDEX IF NOT EXISTS case_tasks_open ON case_tasks (updated_at)"
    " WHERE state IN ('running', 'retrying')",
)
"""Idempotent: run on every start (``always`` of :func:`secondread_shared.db.migrate`)."""

STATES = ("running", "retrying", "done", "dead_lettered")


@dataclass(frozen=True)
class Task:
    case_id: str
    stage: str
    state: str
    attempts: int
    last_error: str
    next_retry_at: datetime | None
    started_at: datetime
    updated_at: datetime


class TaskLog:
    """Writes one service's task records (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        case_id: str,
        stage: str,
        state: str,
        *,
        attempts: int,
        error: str = "",
        retry_in_s: float | None = None,
    ) -> None:
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO case_tasks AS t (case_id, stage, state, attempts, last_error,"
                    " next_retry_at) VALUES (%s, %s, %s, %s, %s,"
                    " now() + make_interval(secs => %s))"
                    " ON CONFLICT (case_id, stage) DO UPDATE SET state = excluded.state,"
                    " attempts = CASE WHEN excluded.state = 'running' AND t.state IN"
                    "   ('done', 'dead_lettered') THEN 0 ELSE GREATEST(t.attempts,"
                    "   excluded.attempts) END,"
                    " last_error = CASE WHEN excluded.last_error = '' THEN t.last_error"
                    "   ELSE excluded.last_error END,"
                    " next_retry_at = excluded.next_retry_at, updated_at = now()",
                    (case_id, stage, state, attempts, error[:500], retry_in_s),
                )
        except Exception as exc:  # the record must never fail the message
            log.warning("task_record_failed", stage=stage, error=type(exc).__name__)


async def tasks(db: Database, case_id: str | None = None) -> list[Task]:
    """The task records of one schema (one case, or all), newest first."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "SELECT case_id, stage, state, attempts, last_error, next_retry_at, started_at,"
            " updated_at FROM case_tasks WHERE %s::text IS NULL OR case_id = %s"
            " ORDER BY updated_at DESC",
            (case_id, case_id),
        )
        rows: list[dict[str, Any]] = await cur.fetchall()
    return [Task(**r) for r in rows]
