"""notify's state (schema ``notify``, PHI zone): delivery contacts, deliveries, outbox."""

from __future__ import annotations

from typing import Any

from secondread_shared import outbox
from secondread_shared.db import Database
from secondread_shared.events import CaseReceived, Event

MIGRATIONS = (
    *outbox.MIGRATIONS,
    """
    CREATE TABLE IF NOT EXISTS contacts (
        case_id         text PRIMARY KEY,
        hospital_id     text NOT NULL,
        physician_name  text NOT NULL,
        physician_email text NOT NULL,
        patient_email   text,
        received_at     timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS deliveries (
        delivery_id    text PRIMARY KEY,
        case_id        text NOT NULL,
        report_id      text NOT NULL,
        channel        text NOT NULL,
        recipient_role text NOT NULL,
        status         text NOT NULL,
        attempts       integer NOT NULL,
        detail         text NOT NULL DEFAULT '',
        updated_at     timestamptz NOT NULL DEFAULT now(),
        UNIQUE (report_id, channel, recipient_role)
    )
    """,
)


class NotifyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save_contacts(self, event: CaseReceived) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO contacts (case_id, hospital_id, physician_name, physician_email,"
                " patient_email) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (case_id) DO NOTHING",
                (
                    event.case_id,
                    event.hospital_id,
                    event.referring_physician.name,
                    str(event.referring_physician.email),
                    str(event.patient_email) if event.patient_email else None,
                ),
            )

    async def contacts(self, case_id: str) -> dict[str, Any] | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT * FROM contacts WHERE case_id = %s", (case_id,))
            return await cur.fetchone()

    async def delivery(self, report_id: str, channel: str, role: str) -> dict[str, Any] | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT * FROM deliveries WHERE report_id = %s AND channel = %s"
                " AND recipient_role = %s",
                (report_id, channel, role),
            )
            return await cur.fetchone()

    async def record_delivery(
        self,
        *,
        delivery_id: str,
        case_id: str,
        report_id: str,
        channel: str,
        role: str,
        status: str,
        attempts: int,
        detail: str,
        events: list[Event],
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO deliveries (delivery_id, case_id, report_id, channel, recipient_role,"
                " status, attempts, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (report_id, channel, recipient_role) DO UPDATE SET"
                " status = EXCLUDED.status, attempts = EXCLUDED.attempts,"
                " detail = EXCLUDED.detail, updated_at = now()",
                (delivery_id, case_id, report_id, channel, role, status, attempts, detail),
            )
            await outbox.enqueue(conn, events)
