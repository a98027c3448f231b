"""reporting's state (schema ``reporting``): worklist, signing keys, signed reports, outbox."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.errors import UniqueViolation

from secondread_reporting.ports import OPEN, CaseRow, CaseStatus
from secondread_reporting.signing import key_id
from secondread_shared import outbox
from secondread_shared.db import Database
from secondread_shared.events import CaseAssigned, Event

MIGRATIONS = (
    *outbox.MIGRATIONS,
    """
    CREATE TABLE IF NOT EXISTS worklist (
        case_id        text PRIMARY KEY,
        radiologist_id text NOT NULL,
        urgency        text NOT NULL,
        due_at         timestamptz NOT NULL,
        assigned       jsonb NOT NULL,
        trace          jsonb NOT NULL DEFAULT '{}'::jsonb,
        status         text NOT NULL DEFAULT 'assigned',
        received_at    timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS signing_keys (
        radiologist_id text PRIMARY KEY,
        key_id         text NOT NULL UNIQUE,
        private_enc    bytea NOT NULL,
        public_raw     bytea NOT NULL,
        created_at     timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS reports (
        report_id      text PRIMARY KEY,
        case_id        text NOT NULL UNIQUE REFERENCES worklist(case_id),
        radiologist_id text NOT NULL,
        key_id         text NOT NULL,
        canonical      bytea NOT NULL,
        signature      text NOT NULL,
        signed_at      timestamptz NOT NULL,
        object_key     text NOT NULL
    )
    """,
)


def _row(row: dict[str, Any]) -> CaseRow:
    return CaseRow(
        case_id=str(row["case_id"]),
        radiologist_id=str(row["radiologist_id"]),
        status=CaseStatus(row["status"]),
        assigned=CaseAssigned.model_validate(row["assigned"]),
        trace=dict(row["trace"] or {}),
    )


class AlreadySigned(Exception):
    """The case already has a signed report (corrections are addenda)."""


class ReportingRepository:
    def __init__(self, db: Database, fernet: Fernet) -> None:
        self.db = db
        self.fernet = fernet

    async def upsert_assignment(self, event: CaseAssigned, trace: dict[str, str]) -> None:
        """Put a case on its reader's worklist.

        A new assignment of the same case (after a decline or an accept timeout) moves it to the
        new reader, open again; a redelivery of the same event changes nothing, and nothing
        changes once the case is signed.
        """
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO worklist (case_id, radiologist_id, urgency, due_at, assigned, trace)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (case_id) DO UPDATE SET radiologist_id = EXCLUDED.radiologist_id,"
                " urgency = EXCLUDED.urgency, due_at = EXCLUDED.due_at,"
                " assigned = EXCLUDED.assigned, trace = EXCLUDED.trace, status = %s"
                " WHERE worklist.status <> %s"
                " AND worklist.assigned->>'event_id' <> EXCLUDED.assigned->>'event_id'",
                (
                    event.case_id,
                    event.radiologist_id,
                    event.urgency.value,
                    event.due_at,
                    event.model_dump_json(),
                    json.dumps(trace),
                    CaseStatus.ASSIGNED.value,
                    CaseStatus.SIGNED.value,
                ),
            )

    async def open_cases(self, radiologist_id: str) -> list[CaseRow]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT * FROM worklist WHERE radiologist_id = %s AND status = ANY(%s)",
                (radiologist_id, [s.value for s in OPEN]),
            )
            return [_row(r) for r in await cur.fetchall()]

    async def case(self, case_id: str) -> CaseRow | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT * FROM worklist WHERE case_id = %s", (case_id,))
            row = await cur.fetchone()
        return None if row is None else _row(row)

    async def set_status(
        self, case_id: str, expected: CaseStatus, status: CaseStatus, events: list[Event]
    ) -> bool:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE worklist SET status = %s WHERE case_id = %s AND status = %s",
                (status.value, case_id, expected.value),
            )
            if cur.rowcount != 1:
                return False
            await outbox.enqueue(conn, events)
        return True

    async def signed_report(self, case_id: str) -> dict[str, Any] | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT * FROM reports WHERE case_id = %s", (case_id,))
            return await cur.fetchone()

    async def signing_key(self, radiologist_id: str) -> Ed25519PrivateKey:
        """The radiologist's private key, created on first use and stored encrypted."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT private_enc FROM signing_keys WHERE radiologist_id = %s", (radiologist_id,)
            )
            row = await cur.fetchone()
            if row is not None:
                raw = self.fernet.decrypt(bytes(row["private_enc"]))
                return Ed25519PrivateKey.from_private_bytes(raw)
            private = Ed25519PrivateKey.generate()
            public = private.public_key()
            raw_private = private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            await conn.execute(
                "INSERT INTO signing_keys (radiologist_id, key_id, private_enc, public_raw)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (radiologist_id) DO NOTHING",
                (
                    radiologist_id,
                    key_id(public),
                    self.fernet.encrypt(raw_private),
                    public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
                ),
            )
        # Re-read: under a concurrent first use, the key that won the insert is the key.
        return await self.signing_key(radiologist_id)

    async def public_key(self, kid: str) -> tuple[str, bytes] | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT radiologist_id, public_raw FROM signing_keys WHERE key_id = %s", (kid,)
            )
            row = await cur.fetchone()
        return None if row is None else (str(row["radiologist_id"]), bytes(row["public_raw"]))

    async def record_signed(
        self,
        *,
        report_id: str,
        case_id: str,
        radiologist_id: str,
        kid: str,
        canonical: bytes,
        signature: str,
        signed_at: datetime,
        object_key: str,
        events: list[Event],
    ) -> None:
        """Store the signed report and its events atomically; refuse a second signature."""
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO reports (report_id, case_id, radiologist_id, key_id, canonical,"
                    " signature, signed_at, object_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        report_id,
                        case_id,
                        radiologist_id,
                        kid,
                        canonical,
                        signature,
                        signed_at,
                        object_key,
                    ),
                )
                await conn.execute(
                    "UPDATE worklist SET status = %s WHERE case_id = %s",
                    (CaseStatus.SIGNED.value, case_id),
                )
                await outbox.enqueue(conn, events)
        except UniqueViolation as exc:
            raise AlreadySigned(case_id) from exc
