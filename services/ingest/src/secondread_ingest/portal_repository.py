"""The upload portal's state in ingest's PostgreSQL schema (so that N replicas agree).

- ``portal_links``: every upload link created, its hospital, expiry, who made it, how many cases
  it may open, and when it was used.
- ``portal_submissions``: one per case form sent through a link: the intake (PHI, like
  ``cases.intake``), what the browser counted, the size of the upload, the sha256 of the status
  capability (never the capability itself), the state (:class:`SubmissionState`), the case it
  opened and the last state of that case on ``secondread.case.status.v1``.
- ``tus_uploads`` and ``tus_parts``: the resumable uploads (the tus info and the bytes stored so
  far), whose bytes are objects in the raw bucket, one per part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from secondread_shared.db import Database

MIGRATIONS = (
    """
    CREATE TABLE IF NOT EXISTS portal_links (
        link_id       text PRIMARY KEY,
        hospital_id   text NOT NULL,
        created_by    text NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        expires_at    timestamptz NOT NULL,
        max_cases     integer NOT NULL DEFAULT 1,
        revoked_at    timestamptz,
        first_used_at timestamptz,
        last_used_at  timestamptz
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS portal_submissions (
        submission_id  text PRIMARY KEY,
        token_sha256   text NOT NULL UNIQUE,
        link_id        text NOT NULL REFERENCES portal_links(link_id),
        hospital_id    text NOT NULL,
        intake         jsonb NOT NULL,
        summary        jsonb NOT NULL,
        upload_length  bigint NOT NULL,
        upload_id      text UNIQUE,
        state          text NOT NULL,
        case_id        text,
        error_code     text,
        error_message  text,
        attempts       integer NOT NULL DEFAULT 0,
        claimed_until  timestamptz,
        case_state     text,
        case_state_at  timestamptz,
        created_at     timestamptz NOT NULL DEFAULT now(),
        uploaded_at    timestamptz,
        opened_at      timestamptz
    )
    """,
    "CREATE INDEX IF NOT EXISTS portal_submissions_link ON portal_submissions (link_id)",
    "CREATE INDEX IF NOT EXISTS portal_submissions_case ON portal_submissions (case_id)",
    """
    CREATE INDEX IF NOT EXISTS portal_submissions_uploaded ON portal_submissions (claimed_until)
        WHERE state = 'uploaded'
    """,
    """
    CREATE TABLE IF NOT EXISTS tus_uploads (
        upload_id  text PRIMARY KEY,
        info       jsonb,
        stored     bigint NOT NULL DEFAULT 0,
        finished   boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS tus_parts (
        upload_id text NOT NULL REFERENCES tus_uploads(upload_id) ON DELETE CASCADE,
        start_at  bigint NOT NULL,
        length    bigint NOT NULL,
        bucket    text NOT NULL,
        key       text NOT NULL,
        PRIMARY KEY (upload_id, start_at)
    )
    """,
)


class SubmissionState(StrEnum):
    UPLOADING = "uploading"
    """The form was accepted; bytes are on their way."""
    UPLOADED = "uploaded"
    """Every byte has arrived; a replica opens the case."""
    OPENED = "opened"
    """The case is open (``case_id``)."""
    REFUSED = "refused"
    """ingest refused the upload (``error_code``, ``error_message``)."""


@dataclass(frozen=True)
class LinkRow:
    link_id: str
    hospital_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    max_cases: int
    revoked_at: datetime | None
    submissions: int


@dataclass(frozen=True)
class SubmissionRow:
    submission_id: str
    link_id: str
    hospital_id: str
    intake: dict[str, Any]
    summary: dict[str, Any]
    upload_length: int
    upload_id: str | None
    state: SubmissionState
    case_id: str | None
    error_code: str | None
    error_message: str | None
    attempts: int
    case_state: str | None
    created_at: datetime
    uploaded_at: datetime | None
    opened_at: datetime | None
    stored: int = 0
    """Bytes of the upload stored so far (from ``tus_uploads``)."""


@dataclass(frozen=True)
class Part:
    start_at: int
    length: int
    bucket: str
    key: str


class LinkUnusable(Exception):
    """The link is revoked or has opened all the cases it may (``code``, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_SUBMISSION_SELECT = (
    "SELECT s.*, coalesce(u.stored, 0) AS stored FROM portal_submissions s"
    " LEFT JOIN tus_uploads u ON u.upload_id = s.upload_id"
)


_LINK_SELECT = (
    "SELECT l.*, (SELECT count(*) FROM portal_submissions s"
    "  WHERE s.link_id = l.link_id AND s.state <> %s) AS n FROM portal_links l"
)


def _link(row: dict[str, Any]) -> LinkRow:
    return LinkRow(
        link_id=str(row["link_id"]),
        hospital_id=str(row["hospital_id"]),
        created_by=str(row["created_by"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        max_cases=int(row["max_cases"]),
        revoked_at=row["revoked_at"],
        submissions=int(row["n"]),
    )


def _submission(row: dict[str, Any]) -> SubmissionRow:
    return SubmissionRow(
        submission_id=str(row["submission_id"]),
        link_id=str(row["link_id"]),
        hospital_id=str(row["hospital_id"]),
        intake=dict(row["intake"]),
        summary=dict(row["summary"]),
        upload_length=int(row["upload_length"]),
        upload_id=row["upload_id"],
        state=SubmissionState(row["state"]),
        case_id=row["case_id"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        attempts=int(row["attempts"]),
        case_state=row["case_state"],
        created_at=row["created_at"],
        uploaded_at=row["uploaded_at"],
        opened_at=row["opened_at"],
        stored=int(row["stored"]),
    )


class PortalRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ links

    async def add_link(
        self,
        *,
        link_id: str,
        hospital_id: str,
        created_by: str,
        expires_at: datetime,
        max_cases: int,
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO portal_links (link_id, hospital_id, created_by, expires_at,"
                " max_cases) VALUES (%s, %s, %s, %s, %s)",
                (link_id, hospital_id, created_by, expires_at, max_cases),
            )

    async def get_link(self, link_id: str) -> LinkRow | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                _LINK_SELECT + " WHERE l.link_id = %s", (SubmissionState.REFUSED.value, link_id)
            )
            row = await cur.fetchone()
        return None if row is None else _link(row)

    async def links_of(self, hospital_id: str, *, limit: int) -> list[LinkRow]:
        """A hospital's most recent links, newest first."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                _LINK_SELECT + " WHERE l.hospital_id = %s ORDER BY l.created_at DESC LIMIT %s",
                (SubmissionState.REFUSED.value, hospital_id, limit),
            )
            rows = await cur.fetchall()
        return [_link(r) for r in rows]

    # ------------------------------------------------------------------ submissions

    async def add_submission(
        self,
        *,
        submission_id: str,
        token_sha256: str,
        link_id: str,
        hospital_id: str,
        intake: dict[str, Any],
        summary: dict[str, Any],
        upload_length: int,
    ) -> None:
        """Record a case form sent through a link, under the link's row lock.

        Raises
        ------
        LinkUnusable
            ``link_revoked``, or ``link_used`` when the link has opened ``max_cases`` already
            (a refused upload does not count).
        """
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT max_cases, revoked_at FROM portal_links WHERE link_id = %s FOR UPDATE",
                (link_id,),
            )
            link = await cur.fetchone()
            if link is None:
                raise LinkUnusable("link_invalid", "this upload link is not known here")
            if link["revoked_at"] is not None:
                raise LinkUnusable("link_revoked", "this upload link was withdrawn")
            cur = await conn.execute(
                "SELECT count(*) AS n FROM portal_submissions WHERE link_id = %s AND state <> %s",
                (link_id, SubmissionState.REFUSED.value),
            )
            used = await cur.fetchone()
            if used is not None and int(used["n"]) >= int(link["max_cases"]):
                raise LinkUnusable(
                    "link_used",
                    "this upload link has been used already: open the status page it gave you,"
                    " or ask the hospital for a new link",
                )
            await conn.execute(
                "INSERT INTO portal_submissions (submission_id, token_sha256, link_id,"
                " hospital_id, intake, summary, upload_length, state)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    submission_id,
                    token_sha256,
                    link_id,
                    hospital_id,
                    json.dumps(intake),
                    json.dumps(summary),
                    upload_length,
                    SubmissionState.UPLOADING.value,
                ),
            )
            await conn.execute(
                "UPDATE portal_links SET first_used_at = coalesce(first_used_at, now()),"
                " last_used_at = now() WHERE link_id = %s",
                (link_id,),
            )

    async def submission_by_token(self, token_sha256: str) -> SubmissionRow | None:
        return await self._one(" WHERE s.token_sha256 = %s", (token_sha256,))

    async def submission_by_upload(self, upload_id: str) -> SubmissionRow | None:
        return await self._one(" WHERE s.upload_id = %s", (upload_id,))

    async def submission(self, submission_id: str) -> SubmissionRow | None:
        return await self._one(" WHERE s.submission_id = %s", (submission_id,))

    async def _one(self, where: str, params: tuple[Any, ...]) -> SubmissionRow | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(_SUBMISSION_SELECT + where, params)
            row = await cur.fetchone()
        return None if row is None else _submission(row)

    async def attach_upload(self, submission_id: str, upload_id: str) -> bool:
        """Name the tus upload that carries a submission's bytes (a new one replaces one that
        was never finished, e.g. after the browser lost it); ``False`` unless still uploading."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE portal_submissions SET upload_id = %s"
                " WHERE submission_id = %s AND state = %s",
                (upload_id, submission_id, SubmissionState.UPLOADING.value),
            )
            return cur.rowcount == 1

    async def mark_uploaded(self, upload_id: str) -> bool:
        """Every byte of ``upload_id`` arrived; ``True`` the first time only."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE portal_submissions SET state = %s, uploaded_at = now()"
                " WHERE upload_id = %s AND state = %s",
                (SubmissionState.UPLOADED.value, upload_id, SubmissionState.UPLOADING.value),
            )
            return cur.rowcount == 1

    async def finished_but_uploading(self) -> list[str]:
        """Uploads holding every byte whose submission still says ``uploading``."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT s.upload_id FROM portal_submissions s"
                " JOIN tus_uploads u ON u.upload_id = s.upload_id"
                " WHERE s.state = %s AND u.stored >= s.upload_length",
                (SubmissionState.UPLOADING.value,),
            )
            rows = await cur.fetchall()
        return [str(r["upload_id"]) for r in rows]

    async def migrate(self) -> None:
        """Create the portal's tables (idempotent; one replica at a time)."""
        async with self.db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('secondread-portal'))")
            for statement in MIGRATIONS:
                await conn.execute(statement.encode())

    async def claim_uploaded(
        self, *, case_id: str, lease_s: float, hospitals: list[str]
    ) -> SubmissionRow | None:
        """Claim one uploaded submission of ``hospitals`` to open its case (``FOR UPDATE SKIP
        LOCKED`` and a lease, so one replica opens it; a crashed replica's claim lapses). The
        case id is fixed at the first claim, so a retry opens the same case."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT submission_id FROM portal_submissions WHERE state = %s"
                " AND hospital_id = ANY(%s)"
                " AND (claimed_until IS NULL OR claimed_until < now())"
                " ORDER BY uploaded_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                (SubmissionState.UPLOADED.value, hospitals),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            await conn.execute(
                "UPDATE portal_submissions SET attempts = attempts + 1,"
                " claimed_until = now() + make_interval(secs => %s),"
                " case_id = coalesce(case_id, %s) WHERE submission_id = %s",
                (lease_s, case_id, row["submission_id"]),
            )
            cur = await conn.execute(
                _SUBMISSION_SELECT + " WHERE s.submission_id = %s", (row["submission_id"],)
            )
            claimed = await cur.fetchone()
        return None if claimed is None else _submission(claimed)

    async def mark_opened(self, submission_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE portal_submissions SET state = %s, opened_at = now(),"
                " claimed_until = NULL, error_code = NULL, error_message = NULL"
                " WHERE submission_id = %s",
                (SubmissionState.OPENED.value, submission_id),
            )

    async def mark_refused(self, submission_id: str, code: str, message: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE portal_submissions SET state = %s, claimed_until = NULL, case_id = NULL,"
                " error_code = %s, error_message = %s WHERE submission_id = %s",
                (SubmissionState.REFUSED.value, code, message, submission_id),
            )

    async def retry_later(self, submission_id: str, delay_s: float, error: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE portal_submissions SET claimed_until = now() + make_interval(secs => %s),"
                " error_code = 'retrying', error_message = %s WHERE submission_id = %s",
                (delay_s, error, submission_id),
            )

    async def record_case_state(self, case_id: str, state: str, at: datetime) -> bool:
        """The latest ``case.status`` of a portal case (older events never overwrite newer)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE portal_submissions SET case_state = %s, case_state_at = %s"
                " WHERE case_id = %s AND (case_state_at IS NULL OR case_state_at <= %s)",
                (state, at, case_id, at),
            )
            return cur.rowcount > 0

    # ------------------------------------------------------------------ tus uploads

    async def tus_create(self, upload_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO tus_uploads (upload_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (upload_id,),
            )

    async def tus_state(self, upload_id: str) -> tuple[dict[str, Any] | None, int] | None:
        """``(info, bytes stored)`` of an upload, ``None`` when unknown."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT info, stored FROM tus_uploads WHERE upload_id = %s", (upload_id,)
            )
            row = await cur.fetchone()
        if row is None:
            return None
        info = row["info"]
        return (dict(info) if info is not None else None), int(row["stored"])

    async def tus_write_info(self, upload_id: str, info: dict[str, Any]) -> None:
        """Store the tus info; its ``offset`` is always the bytes actually stored."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE tus_uploads SET info = jsonb_set(%s::jsonb, '{offset}', to_jsonb(stored))"
                " WHERE upload_id = %s",
                (json.dumps(info, default=str), upload_id),
            )

    async def tus_add_part(self, upload_id: str, part: Part) -> bool:
        """Record a stored part that continues the upload exactly where it stood; ``False``
        (nothing recorded) when the upload moved on meanwhile."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE tus_uploads SET stored = stored + %s WHERE upload_id = %s AND stored = %s",
                (part.length, upload_id, part.start_at),
            )
            if cur.rowcount != 1:
                return False
            await conn.execute(
                "INSERT INTO tus_parts (upload_id, start_at, length, bucket, key)"
                " VALUES (%s, %s, %s, %s, %s)",
                (upload_id, part.start_at, part.length, part.bucket, part.key),
            )
        return True

    async def tus_finish(self, upload_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE tus_uploads SET finished = true WHERE upload_id = %s", (upload_id,)
            )

    async def tus_parts(self, upload_id: str) -> list[Part]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT start_at, length, bucket, key FROM tus_parts WHERE upload_id = %s"
                " ORDER BY start_at",
                (upload_id,),
            )
            rows = await cur.fetchall()
        return [Part(int(r["start_at"]), int(r["length"]), r["bucket"], r["key"]) for r in rows]

    async def tus_delete(self, upload_id: str) -> list[Part]:
        """Forget an upload; return its parts (whose objects the caller deletes)."""
        parts = await self.tus_parts(upload_id)
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM tus_uploads WHERE upload_id = %s", (upload_id,))
        return parts

    async def tus_ids(self) -> list[str]:
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT upload_id FROM tus_uploads")
            rows = await cur.fetchall()
        return [str(r["upload_id"]) for r in rows]
