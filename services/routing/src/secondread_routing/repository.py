"""routing's state (schema ``routing``): assignments and workload."""

from __future__ import annotations

from datetime import datetime

from secondread_shared.db import Database

MIGRATIONS = (
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
)


class RoutingRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def workload(self) -> dict[str, int]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT radiologist_id, count(*) AS n FROM assignments"
                " WHERE closed_at IS NULL GROUP BY radiologist_id"
            )
            rows = await cur.fetchall()
        return {str(r["radiologist_id"]): int(r["n"]) for r in rows}

    async def existing(self, case_id: str) -> dict[str, object] | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT * FROM assignments WHERE case_id = %s", (case_id,))
            return await cur.fetchone()

    async def assign(
        self, case_id: str, radiologist_id: str, subspecialty: str, urgency: str, due: datetime
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO assignments (case_id, radiologist_id, subspecialty, urgency, due_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (case_id) DO NOTHING",
                (case_id, radiologist_id, subspecialty, urgency, due),
            )
