"""reporting's state (schema ``reporting``): worklist, signing keys, drafts, sign attempts, signed
reports, outbox. Migrations are numbered and recorded in ``schema_migrations``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.errors import UniqueViolation

from secondread_reporting.errors import Conflict
from secondread_reporting.ports import OPEN, Attempt, CaseRow, CaseStatus, CaseStudies, Draft
from secondread_reporting.report import DraftContent
from secondread_reporting.signing import key_id, sha256_hex
from secondread_shared import outbox
from secondread_shared.db import Database
from secondread_shared.db import migrate as shared_migrate
from secondread_shared.events import CaseAssigned, Event

MIGRATION_LOCK = 0x5EC0_0004
"""pg_advisory_xact_lock key of reporting's migrations (two replicas starting together)."""

MIGRATIONS: tuple[tuple[int, Sequence[str]], ...] = (
    # 1: the worklist, signing keys and signed reports
    (
        1,
        (
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
        ),
    ),
    # 2: drafts, sign attempts (idempotent signing), addenda, key validity
    (
        2,
        (
            """
        CREATE TABLE IF NOT EXISTS drafts (
            case_id        text PRIMARY KEY REFERENCES worklist(case_id),
            radiologist_id text NOT NULL,
            version        integer NOT NULL,
            content        jsonb NOT NULL,
            updated_at     timestamptz NOT NULL DEFAULT now()
        )
        """,
            """
        CREATE TABLE IF NOT EXISTS sign_attempts (
            report_id      text PRIMARY KEY,
            case_id        text NOT NULL REFERENCES worklist(case_id),
            kind           text NOT NULL,
            amends         text,
            radiologist_id text NOT NULL,
            draft_version  integer NOT NULL,
            key_id         text NOT NULL,
            canonical      bytea NOT NULL,
            signature      text NOT NULL,
            signed_at      timestamptz NOT NULL,
            archive_ids    jsonb NOT NULL DEFAULT '[]'::jsonb,
            completed      boolean NOT NULL DEFAULT false,
            created_at     timestamptz NOT NULL DEFAULT now()
        )
        """,
            """
        CREATE TABLE IF NOT EXISTS idempotency_keys (
            case_id         text NOT NULL,
            idempotency_key text NOT NULL,
            report_id       text NOT NULL REFERENCES sign_attempts(report_id) ON DELETE CASCADE,
            request         text NOT NULL,
            PRIMARY KEY (case_id, idempotency_key)
        )
        """,
            "ALTER TABLE reports ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'report'",
            "ALTER TABLE reports ADD COLUMN IF NOT EXISTS amends text",
            "ALTER TABLE reports ADD COLUMN IF NOT EXISTS sha256 text NOT NULL DEFAULT ''",
            "ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_case_id_key",
            "CREATE UNIQUE INDEX IF NOT EXISTS reports_one_per_case ON reports (case_id)"
            " WHERE kind = 'report'",
            "CREATE UNIQUE INDEX IF NOT EXISTS sign_attempts_one_report_per_case ON sign_attempts"
            " (case_id) WHERE kind = 'report'",
            "ALTER TABLE signing_keys ADD COLUMN IF NOT EXISTS valid_until timestamptz",
        ),
    ),
)


async def migrate(db: Database, migrations: Sequence[tuple[int, Sequence[str]]]) -> list[int]:
    """reporting's numbered migrations (see :func:`secondread_shared.db.migrate`; the shared
    outbox's statements run on every start)."""
    return await shared_migrate(db, migrations, lock=MIGRATION_LOCK, always=outbox.MIGRATIONS)


def _row(row: dict[str, Any]) -> CaseRow:
    return CaseRow(
        case_id=str(row["case_id"]),
        radiologist_id=str(row["radiologist_id"]),
        status=CaseStatus(row["status"]),
        assigned=CaseAssigned.model_validate(row["assigned"]),
        trace=dict(row["trace"] or {}),
    )


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

    async def open_case_studies(self, radiologist_id: str) -> list[CaseStudies]:
        """For the viewer's proxy: the study UIDs of the reader's open cases, read out of the
        stored assignments by PostgreSQL (no event is parsed)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT case_id,"
                " ARRAY(SELECT jsonb_array_elements_text(assigned->'study_instance_uids'))"
                " AS studies,"
                " ARRAY(SELECT p->>'study_instance_uid'"
                " FROM jsonb_array_elements(COALESCE(assigned->'priors', '[]')) p) AS priors,"
                " ARRAY(SELECT o->>'case_id'"
                " FROM jsonb_array_elements(COALESCE(assigned->'earlier_opinions', '[]')) o)"
                " AS earlier FROM worklist WHERE radiologist_id = %s AND status = ANY(%s)",
                (radiologist_id, [s.value for s in OPEN]),
            )
            rows = await cur.fetchall()
        return [
            CaseStudies(str(r["case_id"]), list(r["studies"]), list(r["priors"]),
                        list(r["earlier"]))
            for r in rows
        ]  # fmt: skip

    async def studies_of(self, case_ids: list[str]) -> dict[str, list[str]]:
        if not case_ids:
            return {}
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT case_id,"
                " ARRAY(SELECT jsonb_array_elements_text(assigned->'study_instance_uids'))"
                " AS studies FROM worklist WHERE case_id = ANY(%s)",
                (case_ids,),
            )
            return {str(r["case_id"]): list(r["studies"]) for r in await cur.fetchall()}

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
        """The case's signed report (not its addenda)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT * FROM reports WHERE case_id = %s AND kind = 'report'", (case_id,)
            )
            return await cur.fetchone()

    async def report(self, report_id: str) -> dict[str, Any] | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT * FROM reports WHERE report_id = %s", (report_id,))
            return await cur.fetchone()

    async def addenda(self, report_id: str) -> list[str]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT report_id FROM reports WHERE amends = %s ORDER BY signed_at", (report_id,)
            )
            return [str(r["report_id"]) for r in await cur.fetchall()]

    # ---- drafts ----------------------------------------------------------------------------

    async def draft(self, case_id: str) -> Draft | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT * FROM drafts WHERE case_id = %s", (case_id,))
            row = await cur.fetchone()
        if row is None:
            return None
        return Draft(int(row["version"]), DraftContent.model_validate(row["content"]))

    async def save_draft(
        self, case_id: str, reader: str, content: DraftContent, expected: int | None
    ) -> int | None:
        """Write the draft if it is at version ``expected`` (None: there is none yet); the new
        version, or None when the draft is elsewhere (nothing written)."""
        body = content.model_dump_json()
        async with self.db.transaction() as conn:
            if expected is None:
                cur = await conn.execute(
                    "INSERT INTO drafts (case_id, radiologist_id, version, content)"
                    " VALUES (%s, %s, 1, %s) ON CONFLICT (case_id) DO NOTHING RETURNING version",
                    (case_id, reader, body),
                )
            else:
                cur = await conn.execute(
                    "UPDATE drafts SET version = version + 1, content = %s, radiologist_id = %s,"
                    " updated_at = now() WHERE case_id = %s AND version = %s RETURNING version",
                    (body, reader, case_id, expected),
                )
            row = await cur.fetchone()
        return None if row is None else int(row["version"])

    # ---- sign attempts ---------------------------------------------------------------------

    async def attempt_for_key(self, case_id: str, key: str) -> tuple[Attempt, str] | None:
        """The attempt an Idempotency-Key names, with the request it was first used for."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT a.*, k.request FROM idempotency_keys k JOIN sign_attempts a"
                " USING (report_id) WHERE k.case_id = %s AND k.idempotency_key = %s",
                (case_id, key),
            )
            row = await cur.fetchone()
        return None if row is None else (_attempt(row), str(row["request"]))

    async def pending_attempt(self, case_id: str) -> Attempt | None:
        """The case's unfinished report signature, if a sign failed halfway."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT * FROM sign_attempts WHERE case_id = %s AND kind = 'report'"
                " AND NOT completed",
                (case_id,),
            )
            row = await cur.fetchone()
        return None if row is None else _attempt(row)

    async def save_attempt(self, attempt: Attempt, key: str, request: str) -> None:
        """Record (or replace, for the same report id) an attempt and bind the key to it; a
        concurrent sign of the same case with another key is refused (409)."""
        try:
            await self._save_attempt(attempt, key, request)
        except UniqueViolation as exc:
            raise Conflict(
                f"case {attempt.case_id} is being signed by another request; retry it with "
                "its Idempotency-Key",
                code="sign_in_progress",
            ) from exc

    async def _save_attempt(self, attempt: Attempt, key: str, request: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO sign_attempts (report_id, case_id, kind, amends, radiologist_id,"
                " draft_version, key_id, canonical, signature, signed_at, archive_ids)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '[]'::jsonb)"
                " ON CONFLICT (report_id) DO UPDATE SET draft_version = EXCLUDED.draft_version,"
                " key_id = EXCLUDED.key_id, canonical = EXCLUDED.canonical,"
                " signature = EXCLUDED.signature, signed_at = EXCLUDED.signed_at,"
                " archive_ids = '[]'::jsonb WHERE NOT sign_attempts.completed",
                (
                    attempt.report_id,
                    attempt.case_id,
                    attempt.kind,
                    attempt.amends,
                    attempt.radiologist_id,
                    attempt.draft_version,
                    attempt.key_id,
                    attempt.canonical,
                    attempt.signature,
                    attempt.signed_at,
                ),
            )
            await self._bind_key(conn, attempt, key, request)

    async def bind_key(self, attempt: Attempt, key: str, request: str) -> None:
        async with self.db.transaction() as conn:
            await self._bind_key(conn, attempt, key, request)

    @staticmethod
    async def _bind_key(conn: Any, attempt: Attempt, key: str, request: str) -> None:
        await conn.execute(
            "INSERT INTO idempotency_keys (case_id, idempotency_key, report_id, request)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (attempt.case_id, key, attempt.report_id, request),
        )

    async def set_archive_ids(self, report_id: str, ids: list[str]) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE sign_attempts SET archive_ids = %s WHERE report_id = %s",
                (json.dumps(ids), report_id),
            )

    # ---- keys ------------------------------------------------------------------------------

    async def keys(self) -> list[dict[str, Any]]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT radiologist_id, key_id, public_raw, created_at, valid_until"
                " FROM signing_keys ORDER BY radiologist_id"
            )
            return list(await cur.fetchall())

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
        self, attempt: Attempt, *, object_key: str, events: list[Event]
    ) -> bool:
        """Store the signed report, close its attempt and enqueue its events, atomically.

        False when the attempt was completed already (a concurrent retry won): nothing changes.
        """
        try:
            async with self.db.transaction() as conn:
                cur = await conn.execute(
                    "UPDATE sign_attempts SET completed = true WHERE report_id = %s"
                    " AND NOT completed",
                    (attempt.report_id,),
                )
                if cur.rowcount != 1:
                    return False
                await conn.execute(
                    "INSERT INTO reports (report_id, case_id, radiologist_id, key_id, canonical,"
                    " signature, signed_at, object_key, kind, amends, sha256)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        attempt.report_id,
                        attempt.case_id,
                        attempt.radiologist_id,
                        attempt.key_id,
                        attempt.canonical,
                        attempt.signature,
                        attempt.signed_at,
                        object_key,
                        attempt.kind,
                        attempt.amends,
                        sha256_hex(attempt.canonical),
                    ),
                )
                if attempt.kind == "report":
                    await conn.execute(
                        "UPDATE worklist SET status = %s WHERE case_id = %s",
                        (CaseStatus.SIGNED.value, attempt.case_id),
                    )
                await outbox.enqueue(conn, events)
        except UniqueViolation as exc:
            raise Conflict(
                f"case {attempt.case_id} already has a signed report; corrections are addenda",
                code="already_signed",
            ) from exc
        return True


def _attempt(row: dict[str, Any]) -> Attempt:
    return Attempt(
        report_id=str(row["report_id"]),
        case_id=str(row["case_id"]),
        kind=str(row["kind"]),
        amends=row["amends"],
        radiologist_id=str(row["radiologist_id"]),
        draft_version=int(row["draft_version"]),
        key_id=str(row["key_id"]),
        canonical=bytes(row["canonical"]),
        signature=str(row["signature"]),
        signed_at=row["signed_at"],
        archive_ids=list(row["archive_ids"] or []),
        completed=bool(row["completed"]),
    )
