"""routing's state (schema ``routing``): roster, cases, assignments and their accept timers,
earlier opinions, and the outbox of events to publish.

Migrations are numbered and recorded in ``schema_migrations``; each runs once, in order, under
an advisory lock so that two replicas starting together do not race. The outbox table is the
common package's (:mod:`secondread_shared.outbox`): its own idempotent statements run on every
start.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg

from secondread_routing.assignment import Load
from secondread_routing.ops.repository import MIGRATIONS as OPS_MIGRATIONS
from secondread_routing.ports import AssignmentRecord, CaseRecord
from secondread_routing.roster import Reader
from secondread_shared import outbox
from secondread_shared.db import Database
from secondread_shared.db import migrate as shared_migrate
from secondread_shared.events import (
    CaseDeidentified,
    CaseState,
    EarlierOpinion,
    Event,
    Priority,
    PriorStudy,
)

# pg_advisory_xact_lock keys (arbitrary constants, routing's schema only).
MIGRATION_LOCK = 0x5EC0_0001
ASSIGNMENT_LOCK = 0x5EC0_0002

MIGRATIONS: tuple[tuple[int, Sequence[str]], ...] = (
    (
        1,
        (
            """
            CREATE TABLE IF NOT EXISTS assignments (
                case_id        text PRIMARY KEY,
                radiologist_id text NOT NULL,
                subspecialty   text NOT NULL,
                urgency        text NOT NULL,
                due_at         timestamptz NOT NULL,
                assigned_at    timestamptz NOT NULL DEFAULT now(),
                closed_at      timestamptz
            )
            """,
            "CREATE INDEX IF NOT EXISTS assignments_open ON assignments (radiologist_id)"
            " WHERE closed_at IS NULL",
        ),
    ),
    (
        2,
        (
            # A case can be assigned more than once (decline, timeout): one open row at a time.
            "ALTER TABLE assignments DROP CONSTRAINT IF EXISTS assignments_pkey",
            "ALTER TABLE assignments ADD COLUMN id bigserial PRIMARY KEY",
            "ALTER TABLE assignments ADD COLUMN accept_by timestamptz",
            "ALTER TABLE assignments ADD COLUMN accepted_at timestamptz",
            "ALTER TABLE assignments ADD COLUMN closed_reason text",
            "CREATE UNIQUE INDEX assignments_one_open ON assignments (case_id)"
            " WHERE closed_at IS NULL",
            "CREATE INDEX assignments_timers ON assignments (accept_by)"
            " WHERE closed_at IS NULL AND accepted_at IS NULL",
            """
            CREATE TABLE readers (
                id         text PRIMARY KEY,
                position   integer NOT NULL,
                doc        jsonb NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE cases (
                case_id      text PRIMARY KEY,
                event        jsonb NOT NULL,
                subspecialty text NOT NULL,
                rule         text NOT NULL,
                priority     text NOT NULL,
                due_at       timestamptz NOT NULL,
                flags        jsonb NOT NULL,
                priors       jsonb NOT NULL,
                opinions     jsonb NOT NULL,
                state        text NOT NULL,
                reason       text NOT NULL DEFAULT '',
                excluded     text[] NOT NULL DEFAULT '{}',
                created_at   timestamptz NOT NULL DEFAULT now(),
                updated_at   timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX cases_waiting ON cases (created_at) WHERE state = 'unassigned'",
            """
            CREATE TABLE opinions (
                report_id         text PRIMARY KEY,
                case_id           text NOT NULL,
                patient_pseudonym text NOT NULL,
                radiologist_id    text NOT NULL,
                subspecialty      text NOT NULL DEFAULT '',
                signed_at         timestamptz NOT NULL,
                assessment        text NOT NULL DEFAULT ''
            )
            """,
            "CREATE INDEX opinions_patient ON opinions (patient_pseudonym)",
        ),
    ),
    *OPS_MIGRATIONS,  # 3: the operations page's status view, dead-letter index, replays
)


async def migrate(db: Database, migrations: Sequence[tuple[int, Sequence[str]]]) -> list[int]:
    """routing's numbered migrations (see :func:`secondread_shared.db.migrate`; the shared
    outbox's statements run on every start)."""
    return await shared_migrate(db, migrations, lock=MIGRATION_LOCK, always=outbox.MIGRATIONS)


def _case(row: dict[str, Any]) -> CaseRecord:
    return CaseRecord(
        case_id=str(row["case_id"]),
        event=CaseDeidentified.model_validate(row["event"]),
        subspecialty=str(row["subspecialty"]),
        rule=str(row["rule"]),
        priority=Priority(row["priority"]),
        due_at=row["due_at"],
        flags=list(row["flags"]),
        priors=[PriorStudy.model_validate(p) for p in row["priors"]],
        opinions=[EarlierOpinion.model_validate(o) for o in row["opinions"]],
        state=str(row["state"]),
        reason=str(row["reason"]),
        excluded=list(row["excluded"]),
    )


def _assignment(row: dict[str, Any]) -> AssignmentRecord:
    return AssignmentRecord(
        id=int(row["id"]),
        case_id=str(row["case_id"]),
        radiologist_id=str(row["radiologist_id"]),
        assigned_at=row["assigned_at"],
        accept_by=row["accept_by"],
        accepted_at=row["accepted_at"],
    )


class PgUnit:
    """:class:`~secondread_routing.ports.Unit` on one PostgreSQL transaction."""

    def __init__(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> None:
        self.conn = conn

    async def _one(self, sql: str, params: Sequence[object] = ()) -> dict[str, Any] | None:
        cur = await self.conn.execute(sql.encode(), params)
        return await cur.fetchone()

    async def _all(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        cur = await self.conn.execute(sql.encode(), params)
        return list(await cur.fetchall())

    async def case(self, case_id: str) -> CaseRecord | None:
        row = await self._one("SELECT * FROM cases WHERE case_id = %s", (case_id,))
        return _case(row) if row else None

    async def save_case(self, case: CaseRecord) -> None:
        await self.conn.execute(
            "INSERT INTO cases (case_id, event, subspecialty, rule, priority, due_at, flags,"
            " priors, opinions, state, reason, excluded)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (case_id) DO UPDATE SET event = EXCLUDED.event,"
            " flags = EXCLUDED.flags, priors = EXCLUDED.priors, state = EXCLUDED.state,"
            " reason = EXCLUDED.reason, excluded = EXCLUDED.excluded, updated_at = now()",
            (
                case.case_id,
                case.event.model_dump_json(),
                case.subspecialty,
                case.rule,
                case.priority.value,
                case.due_at,
                json.dumps(case.flags),
                json.dumps([p.model_dump(mode="json") for p in case.priors]),
                json.dumps([o.model_dump(mode="json") for o in case.opinions]),
                case.state,
                case.reason,
                case.excluded,
            ),
        )

    async def readers(self) -> list[Reader]:
        rows = await self._all("SELECT doc FROM readers ORDER BY position, id")
        return [Reader.model_validate(r["doc"]) for r in rows]

    async def replace_readers(self, readers: Sequence[Reader]) -> list[str]:
        rows = await self._all("SELECT id, position, doc FROM readers")
        before = {str(r["id"]): (int(r["position"]), json.dumps(r["doc"], sort_keys=True))
                  for r in rows}  # fmt: skip
        changed: list[str] = []
        for position, reader in enumerate(readers):
            doc = reader.canonical()
            if before.get(reader.id) == (position, doc):
                continue
            changed.append(reader.id)
            await self.conn.execute(
                "INSERT INTO readers (id, position, doc) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position,"
                " doc = EXCLUDED.doc, updated_at = now()",
                (reader.id, position, doc),
            )
        gone = sorted(set(before) - {r.id for r in readers})
        if gone:
            await self.conn.execute("DELETE FROM readers WHERE id = ANY(%s)", (gone,))
        return [*changed, *gone]

    async def load(self) -> dict[str, Load]:
        rows = await self._all(
            "SELECT radiologist_id, count(*) AS n, max(due_at) AS free_at FROM assignments"
            " WHERE closed_at IS NULL GROUP BY radiologist_id"
        )
        return {str(r["radiologist_id"]): Load(int(r["n"]), r["free_at"]) for r in rows}

    async def open_assignment(self, case_id: str) -> AssignmentRecord | None:
        row = await self._one(
            "SELECT * FROM assignments WHERE case_id = %s AND closed_at IS NULL", (case_id,)
        )
        return _assignment(row) if row else None

    async def add_assignment(
        self, case: CaseRecord, radiologist_id: str, at: datetime, accept_by: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO assignments (case_id, radiologist_id, subspecialty, urgency, due_at,"
            " assigned_at, accept_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (case.case_id, radiologist_id, case.subspecialty, case.event.urgency.value,
             case.due_at, at, accept_by),
        )  # fmt: skip

    async def close_assignment(self, assignment_id: int, reason: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE assignments SET closed_at = %s, closed_reason = %s"
            " WHERE id = %s AND closed_at IS NULL",
            (at, reason, assignment_id),
        )

    async def accept(self, assignment_id: int, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE assignments SET accepted_at = %s WHERE id = %s AND accepted_at IS NULL",
            (at, assignment_id),
        )

    async def rearm(self, assignment_id: int, accept_by: datetime | None) -> None:
        await self.conn.execute(
            "UPDATE assignments SET accept_by = %s WHERE id = %s", (accept_by, assignment_id)
        )

    async def expired_timers(self, now: datetime, limit: int) -> list[AssignmentRecord]:
        rows = await self._all(
            "SELECT * FROM assignments WHERE closed_at IS NULL AND accepted_at IS NULL"
            " AND accept_by <= %s ORDER BY accept_by LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        )
        return [_assignment(r) for r in rows]

    async def unassigned(self, limit: int) -> list[str]:
        rows = await self._all(
            "SELECT case_id FROM cases WHERE state = %s ORDER BY created_at LIMIT %s"
            " FOR UPDATE SKIP LOCKED",
            (CaseState.UNASSIGNED.value, limit),
        )
        return [str(r["case_id"]) for r in rows]

    async def opinions_of(self, patient_pseudonym: str) -> list[EarlierOpinion]:
        rows = await self._all(
            "SELECT * FROM opinions WHERE patient_pseudonym = %s ORDER BY signed_at DESC",
            (patient_pseudonym,),
        )
        return [
            EarlierOpinion(
                case_id=str(r["case_id"]),
                report_id=str(r["report_id"]),
                radiologist_id=str(r["radiologist_id"]),
                signed_at=r["signed_at"],
                assessment=str(r["assessment"]),
                subspecialty=str(r["subspecialty"]),
            )
            for r in rows
        ]

    async def record_opinion(self, opinion: EarlierOpinion, patient_pseudonym: str) -> None:
        await self.conn.execute(
            "INSERT INTO opinions (report_id, case_id, patient_pseudonym, radiologist_id,"
            " subspecialty, signed_at, assessment) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (report_id) DO NOTHING",
            (opinion.report_id, opinion.case_id, patient_pseudonym, opinion.radiologist_id,
             opinion.subspecialty, opinion.signed_at, opinion.assessment),
        )  # fmt: skip

    async def enqueue(self, events: Sequence[Event]) -> None:
        await outbox.enqueue(self.conn, events)

    # For `secondread roster list`: the readers with their open cases.
    async def open_counts(self) -> dict[str, int]:
        return {k: v.open for k, v in (await self.load()).items()}


class RoutingRepository:
    """:class:`~secondread_routing.ports.Repository` on routing's schema."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def migrate(self) -> list[int]:
        return await migrate(self.db, MIGRATIONS)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[PgUnit]:
        async with self.db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ASSIGNMENT_LOCK,))
            yield PgUnit(conn)
