"""ingest's own state in PostgreSQL (schema ``ingest``): cases, studies, instances, the outbox.

- ``cases``: one row per case, with its intake (absent while a DIMSE study waits for one), its
  status (:class:`secondread_ingest.completion.Status`) and its flags.
- ``studies``: which case a (hospital, StudyInstanceUID) belongs to, current or prior. A study
  maps to one case per hospital, so a late instance finds its case and never opens a second one.
- ``instances``: every stored object, keyed by case and SOP Instance UID, with its sha256;
  ``announced`` is false until a ``case.received`` or ``case.amended`` event carried it.
- ``conflicts``: a second, different payload under a SOP Instance UID already stored.

An announcement marks the instances and writes its events in the same transaction;
:class:`secondread_shared.outbox.OutboxRelay` publishes them afterwards, so a crash between the
two loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from secondread_ingest.completion import Progress, Status
from secondread_ingest.errors import InputRejected
from secondread_ingest.intake import IntakeForm
from secondread_shared import outbox
from secondread_shared.db import Database
from secondread_shared.events import Event, InstanceRef, Role

MIGRATIONS = (
    *outbox.MIGRATIONS,
    """
    CREATE TABLE IF NOT EXISTS cases (
        case_id     text PRIMARY KEY,
        hospital_id text NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        status      text NOT NULL,
        intake      jsonb NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS instances (
        case_id            text NOT NULL REFERENCES cases(case_id),
        sop_instance_uid   text NOT NULL,
        study_instance_uid text NOT NULL,
        bucket             text NOT NULL,
        key                text NOT NULL,
        sha256             text NOT NULL,
        size               bigint NOT NULL,
        PRIMARY KEY (case_id, sop_instance_uid)
    )
    """,
    # Issue 3: DIMSE/STOW studies, completion, priors, amendments, conflicts.
    "ALTER TABLE cases ALTER COLUMN intake DROP NOT NULL",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT 'upload'",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS last_instance_at timestamptz",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS parked_reason text",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS flags jsonb NOT NULL DEFAULT '[]'::jsonb",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS priors_done boolean NOT NULL DEFAULT false",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS received_event_id text",
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS announced_flags integer NOT NULL DEFAULT 0",
    "CREATE INDEX IF NOT EXISTS cases_open ON cases (status) WHERE status <> 'received'",
    # Rows from before this migration were announced already: the default covers them.
    "ALTER TABLE instances ADD COLUMN IF NOT EXISTS announced boolean NOT NULL DEFAULT true",
    "ALTER TABLE instances ADD COLUMN IF NOT EXISTS series_instance_uid text NOT NULL DEFAULT ''",
    "ALTER TABLE instances ADD COLUMN IF NOT EXISTS sop_class_uid text NOT NULL DEFAULT ''",
    "ALTER TABLE instances ADD COLUMN IF NOT EXISTS role text NOT NULL DEFAULT 'current'",
    "ALTER TABLE instances ADD COLUMN IF NOT EXISTS report_text text",
    "ALTER TABLE instances ADD COLUMN IF NOT EXISTS received_at timestamptz NOT NULL DEFAULT now()",
    "CREATE INDEX IF NOT EXISTS instances_unannounced ON instances (case_id) WHERE NOT announced",
    """
    CREATE TABLE IF NOT EXISTS studies (
        hospital_id          text NOT NULL,
        study_instance_uid   text NOT NULL,
        case_id              text NOT NULL REFERENCES cases(case_id),
        role                 text NOT NULL DEFAULT 'current',
        patient_id           text NOT NULL DEFAULT '',
        issuer_of_patient_id text NOT NULL DEFAULT '',
        PRIMARY KEY (hospital_id, study_instance_uid)
    )
    """,
    "CREATE INDEX IF NOT EXISTS studies_case ON studies (case_id)",
    """
    CREATE TABLE IF NOT EXISTS conflicts (
        case_id          text NOT NULL REFERENCES cases(case_id),
        sop_instance_uid text NOT NULL,
        sha256           text NOT NULL,
        bucket           text NOT NULL,
        key              text NOT NULL,
        received_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (case_id, sop_instance_uid, sha256)
    )
    """,
    # Issue 13: N replicas. Each replica's C-STORE spool backlog per hospital (a hospital's
    # cases are not decided while any live replica still holds instances of it), and a lease
    # on a prior fetch (one replica fetches; a dead replica's fetch is taken over).
    """
    CREATE TABLE IF NOT EXISTS spool_backlog (
        replica     text NOT NULL,
        hospital_id text NOT NULL,
        pending     integer NOT NULL,
        seen_at     timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (replica, hospital_id)
    )
    """,
    "ALTER TABLE cases ADD COLUMN IF NOT EXISTS priors_lease_until timestamptz",
)

_OPEN_STATES = (
    Status.AWAITING_IMAGES,
    Status.RECEIVING,
    Status.COMPLETE,
    Status.FETCHING_PRIORS,
)


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    hospital_id: str
    status: str
    created_at: datetime
    instances: int
    source: str = "upload"
    parked_reason: str | None = None
    flags: tuple[str, ...] = ()
    study_instance_uids: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpenCase:
    case_id: str
    hospital_id: str
    progress: Progress


@dataclass(frozen=True)
class StudyCase:
    """The case a (hospital, study) belongs to and the study's role in it."""

    case_id: str
    role: Role


@dataclass(frozen=True)
class PatientKey:
    """Who the priors are looked for: PatientID (and issuer) of a case's current study."""

    patient_id: str
    issuer_of_patient_id: str
    study_instance_uids: tuple[str, ...]


@dataclass(frozen=True)
class Announcement:
    """What an announcement needs, read under the case's row lock."""

    case_id: str
    hospital_id: str
    intake: IntakeForm | None
    already_announced: bool
    received_event_id: str | None
    instances: list[InstanceRef]
    extracted_reports: list[str]
    new_flags: list[str]
    all_flags: list[str]


AnnouncementBuilder = Callable[[Announcement], Sequence[Event]]


class _Retry(Exception):
    """Another writer created the study's case first: read it again."""


def _ref(row: dict[str, Any]) -> InstanceRef:
    return InstanceRef(
        bucket=row["bucket"],
        key=row["key"],
        sha256=row["sha256"],
        size=int(row["size"]),
        study_instance_uid=row["study_instance_uid"],
        series_instance_uid=row["series_instance_uid"],
        sop_instance_uid=row["sop_instance_uid"],
        sop_class_uid=row["sop_class_uid"],
        role=Role(row["role"]),
    )


# The columns :func:`_case_row` reads, for one or more cases.
_CASE_ROW_SELECT = (
    "SELECT c.case_id, c.hospital_id, c.status, c.created_at, c.source,"
    " c.parked_reason, c.flags,"
    " (SELECT count(*) FROM instances i WHERE i.case_id = c.case_id) AS n,"
    " ARRAY(SELECT study_instance_uid FROM studies s WHERE s.case_id = c.case_id"
    "   ORDER BY role, study_instance_uid) AS studies"
    " FROM cases c"
)


class IngestRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ uploads (HTTP)

    async def record_case(
        self,
        *,
        case_id: str,
        hospital_id: str,
        intake: dict[str, Any],
        instances: list[InstanceRef],
        patients: dict[str, tuple[str, str]],
        reports: dict[str, str],
        flags: list[str],
    ) -> None:
        """Store an uploaded case: intake, studies and instances, complete but not announced.

        ``patients`` maps each StudyInstanceUID to its (PatientID, IssuerOfPatientID);
        ``reports`` maps a SOP Instance UID to the report text extracted from it.
        """
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO cases (case_id, hospital_id, status, intake, source, flags,"
                " last_instance_at) VALUES (%s, %s, %s, %s, 'upload', %s, now())",
                (case_id, hospital_id, Status.COMPLETE, json.dumps(intake), json.dumps(flags)),
            )
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO studies (hospital_id, study_instance_uid, case_id, role,"
                    " patient_id, issuer_of_patient_id) VALUES (%s, %s, %s, 'current', %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    [(hospital_id, s, case_id, p, i) for s, (p, i) in patients.items()],
                )
            await self._insert_instances(conn, case_id, instances, reports)

    async def _insert_instances(
        self,
        conn: psycopg.AsyncConnection[dict[str, Any]],
        case_id: str,
        instances: list[InstanceRef],
        reports: dict[str, str],
    ) -> int:
        inserted = 0
        async with conn.cursor() as cur:
            for i in instances:
                await cur.execute(
                    "INSERT INTO instances (case_id, sop_instance_uid, study_instance_uid,"
                    " series_instance_uid, sop_class_uid, role, bucket, key, sha256, size,"
                    " report_text, announced) VALUES"
                    " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false) ON CONFLICT DO NOTHING",
                    (
                        case_id,
                        i.sop_instance_uid,
                        i.study_instance_uid,
                        i.series_instance_uid,
                        i.sop_class_uid,
                        i.role.value,
                        i.bucket,
                        i.key,
                        i.sha256,
                        i.size,
                        reports.get(i.sop_instance_uid),
                    ),
                )
                inserted += cur.rowcount
        return inserted

    # ------------------------------------------------------------------ intake alone

    async def open_intake(
        self, *, new_case_id: str, hospital_id: str, intake: IntakeForm
    ) -> tuple[str, bool]:
        """Record an intake naming its studies; return ``(case_id, created)``.

        If instances of those studies already came (a receiving or parked case without an
        intake), the intake joins that case, which then completes as usual.

        Raises
        ------
        InputRejected
            ``study_already_open`` (409) when a named study already has an intake, or the
            studies belong to different cases.
        """
        uids = intake.study_instance_uids
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT s.case_id, c.intake IS NOT NULL AS has_intake FROM studies s"
                " JOIN cases c USING (case_id) WHERE s.hospital_id = %s"
                " AND s.study_instance_uid = ANY(%s) AND s.role = 'current' FOR UPDATE OF c",
                (hospital_id, uids),
            )
            rows = await cur.fetchall()
            cases = {str(r["case_id"]) for r in rows}
            if any(r["has_intake"] for r in rows) or len(cases) > 1:
                raise InputRejected(
                    "study_already_open",
                    "a named StudyInstanceUID already belongs to a case with an intake",
                    status=409,
                )
            intake_json = json.dumps(intake.model_dump(mode="json"))
            if cases:
                case_id = cases.pop()
                await conn.execute(
                    "UPDATE cases SET intake = %s, parked_reason = NULL,"
                    " status = CASE WHEN status = 'parked' THEN 'receiving' ELSE status END"
                    " WHERE case_id = %s",
                    (intake_json, case_id),
                )
                created = False
            else:
                case_id = new_case_id
                await conn.execute(
                    "INSERT INTO cases (case_id, hospital_id, status, intake, source)"
                    " VALUES (%s, %s, %s, %s, 'intake')",
                    (case_id, hospital_id, Status.AWAITING_IMAGES, intake_json),
                )
                created = True
            async with conn.cursor() as c2:
                await c2.executemany(
                    "INSERT INTO studies (hospital_id, study_instance_uid, case_id, role)"
                    " VALUES (%s, %s, %s, 'current') ON CONFLICT DO NOTHING",
                    [(hospital_id, uid, case_id) for uid in uids],
                )
        return case_id, created

    # ------------------------------------------------------------------ DIMSE / STOW

    async def case_for_study(
        self,
        *,
        hospital_id: str,
        study_instance_uid: str,
        patient_id: str,
        issuer_of_patient_id: str,
        new_case_id: Callable[[], str],
        source: str,
    ) -> StudyCase:
        """The case a study belongs to, opening a receiving case (no intake) when none does."""
        for _ in range(3):
            try:
                return await self._case_for_study(
                    hospital_id,
                    study_instance_uid,
                    patient_id,
                    issuer_of_patient_id,
                    new_case_id(),
                    source,
                )
            except _Retry:
                continue
        raise RuntimeError("could not settle the case of a study")  # pragma: no cover

    async def _case_for_study(
        self,
        hospital_id: str,
        study_uid: str,
        patient_id: str,
        issuer: str,
        case_id: str,
        source: str,
    ) -> StudyCase:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT case_id, role, patient_id FROM studies"
                " WHERE hospital_id = %s AND study_instance_uid = %s",
                (hospital_id, study_uid),
            )
            row = await cur.fetchone()
            if row is not None:
                if not row["patient_id"] and patient_id:
                    await conn.execute(
                        "UPDATE studies SET patient_id = %s, issuer_of_patient_id = %s"
                        " WHERE hospital_id = %s AND study_instance_uid = %s",
                        (patient_id, issuer, hospital_id, study_uid),
                    )
                return StudyCase(str(row["case_id"]), Role(row["role"]))
            await conn.execute(
                "INSERT INTO cases (case_id, hospital_id, status, intake, source)"
                " VALUES (%s, %s, %s, NULL, %s)",
                (case_id, hospital_id, Status.RECEIVING, source),
            )
            cur = await conn.execute(
                "INSERT INTO studies (hospital_id, study_instance_uid, case_id, role, patient_id,"
                " issuer_of_patient_id) VALUES (%s, %s, %s, 'current', %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING case_id",
                (hospital_id, study_uid, case_id, patient_id, issuer),
            )
            if await cur.fetchone() is None:
                raise _Retry()  # rolls the new case back
        return StudyCase(case_id, Role.CURRENT)

    async def stored_digest(self, case_id: str, sop_instance_uid: str) -> str | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT sha256 FROM instances WHERE case_id = %s AND sop_instance_uid = %s",
                (case_id, sop_instance_uid),
            )
            row = await cur.fetchone()
        return None if row is None else str(row["sha256"])

    async def add_instance(
        self, case_id: str, ref: InstanceRef, report_text: str | None, received_at: datetime
    ) -> bool:
        """Record one stored instance of a case; ``False`` when it was recorded already."""
        async with self.db.transaction() as conn:
            inserted = await self._insert_instances(
                conn, case_id, [ref], {ref.sop_instance_uid: report_text} if report_text else {}
            )
            await conn.execute(
                "UPDATE cases SET last_instance_at = GREATEST(last_instance_at, %s),"
                " status = CASE WHEN status = 'awaiting_images' THEN 'receiving' ELSE status END"
                " WHERE case_id = %s",
                (received_at, case_id),
            )
        return inserted > 0

    async def add_conflict(self, case_id: str, ref: InstanceRef) -> None:
        """Record a different payload under a SOP Instance UID already stored, and flag it."""
        flag = f"conflicting_duplicate:{ref.sop_instance_uid}"
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO conflicts (case_id, sop_instance_uid, sha256, bucket, key)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (case_id, ref.sop_instance_uid, ref.sha256, ref.bucket, ref.key),
            )
            await conn.execute(
                "UPDATE cases SET flags = flags || %s::jsonb WHERE case_id = %s AND NOT flags ? %s",
                (json.dumps([flag]), case_id, flag),
            )

    # ------------------------------------------------------------------ completion

    async def open_cases(self) -> list[OpenCase]:
        """Cases still receiving, and announced cases with unannounced instances or flags."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT c.case_id, c.hospital_id, c.status, c.intake, c.last_instance_at,"
                " c.priors_done, jsonb_array_length(c.flags) - c.announced_flags AS new_flags,"
                " (SELECT count(*) FROM instances i WHERE i.case_id = c.case_id) AS n,"
                " (SELECT count(*) FROM instances i WHERE i.case_id = c.case_id"
                "   AND NOT i.announced) AS unannounced"
                " FROM cases c WHERE c.status = ANY(%s)"
                " OR (c.status = 'received' AND (jsonb_array_length(c.flags) > c.announced_flags"
                "   OR EXISTS (SELECT 1 FROM instances i WHERE i.case_id = c.case_id"
                "     AND NOT i.announced)))",
                ([s.value for s in _OPEN_STATES],),
            )
            rows = await cur.fetchall()
        out = []
        for r in rows:
            intake = r["intake"]
            out.append(
                OpenCase(
                    case_id=str(r["case_id"]),
                    hospital_id=str(r["hospital_id"]),
                    progress=Progress(
                        status=Status(r["status"]),
                        has_intake=intake is not None,
                        instances=int(r["n"]),
                        unannounced=int(r["unannounced"]) + max(0, int(r["new_flags"])),
                        last_instance_at=r["last_instance_at"],
                        expected_instances=(intake or {}).get("expected_instances"),
                        fetch_priors=bool((intake or {}).get("fetch_priors")),
                        priors_done=bool(r["priors_done"]),
                    ),
                )
            )
        return out

    async def announce(self, case_id: str, build: AnnouncementBuilder) -> int:
        """Announce a case's unannounced instances atomically; return how many were announced.

        ``build`` turns what is read under the row lock into the events to publish (none means
        nothing to announce). The instances are marked, the case becomes ``received`` and the
        events go to the outbox, in one transaction.
        """
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT hospital_id, status, intake, received_event_id, flags, announced_flags"
                " FROM cases WHERE case_id = %s FOR UPDATE",
                (case_id,),
            )
            case = await cur.fetchone()
            if case is None:
                return 0
            cur = await conn.execute(
                "SELECT * FROM instances WHERE case_id = %s AND NOT announced"
                " ORDER BY role, study_instance_uid, series_instance_uid, sop_instance_uid",
                (case_id,),
            )
            rows = await cur.fetchall()
            flags = [str(f) for f in case["flags"]]
            already = case["status"] == Status.RECEIVED
            new_flags = flags[int(case["announced_flags"]) :] if already else flags
            if not rows and not new_flags:
                return 0
            ann = Announcement(
                case_id=case_id,
                hospital_id=str(case["hospital_id"]),
                intake=IntakeForm.model_validate(case["intake"]) if case["intake"] else None,
                already_announced=already,
                received_event_id=case["received_event_id"],
                instances=[_ref(r) for r in rows],
                extracted_reports=[
                    str(r["report_text"])
                    for r in rows
                    if r["report_text"] and r["role"] == Role.CURRENT
                ],
                new_flags=new_flags,
                all_flags=flags,
            )
            events = list(build(ann))
            if not events:
                return 0
            await conn.execute(
                "UPDATE instances SET announced = true WHERE case_id = %s AND NOT announced"
                " AND sop_instance_uid = ANY(%s)",
                (case_id, [r["sop_instance_uid"] for r in rows]),
            )
            received_id = case["received_event_id"] or events[0].event_id
            await conn.execute(
                "UPDATE cases SET status = 'received', received_event_id = %s,"
                " announced_flags = %s WHERE case_id = %s",
                (received_id, len(flags), case_id),
            )
            await outbox.enqueue(conn, events)
        return len(rows)

    async def park(self, case_id: str, reason: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE cases SET status = 'parked', parked_reason = %s"
                " WHERE case_id = %s AND intake IS NULL",
                (reason, case_id),
            )

    # ------------------------------------------------------------------ priors

    async def report_backlog(self, replica: str, pending: Mapping[str, int]) -> None:
        """Record this replica's spool backlog per hospital (only hospitals with some)."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM spool_backlog WHERE replica = %s", (replica,))
            for hospital_id, n in pending.items():
                if n > 0:
                    await conn.execute(
                        "INSERT INTO spool_backlog (replica, hospital_id, pending)"
                        " VALUES (%s, %s, %s)",
                        (replica, hospital_id, n),
                    )

    async def busy_hospitals(self, live_within_s: float) -> set[str]:
        """Hospitals of which a live replica (reported within ``live_within_s``) still holds
        spooled instances: their cases wait."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT DISTINCT hospital_id FROM spool_backlog WHERE pending > 0"
                " AND seen_at > now() - make_interval(secs => %s)",
                (live_within_s,),
            )
            return {str(r["hospital_id"]) for r in await cur.fetchall()}

    async def claim_priors(self, case_id: str, lease_s: float) -> bool:
        """Take the prior fetch of a case (one replica wins; an expired lease is taken over)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE cases SET status = 'fetching_priors',"
                " priors_lease_until = now() + make_interval(secs => %s)"
                " WHERE case_id = %s AND NOT priors_done AND (status <> 'fetching_priors'"
                "   OR priors_lease_until IS NULL OR priors_lease_until < now())"
                " RETURNING case_id",
                (lease_s, case_id),
            )
            return await cur.fetchone() is not None

    async def begin_priors(self, case_id: str) -> PatientKey | None:
        """Whom to look for in the PACS for a claimed case (``None``: no PatientID)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT study_instance_uid, patient_id, issuer_of_patient_id FROM studies"
                " WHERE case_id = %s AND role = 'current'",
                (case_id,),
            )
            rows = await cur.fetchall()
        with_id = [r for r in rows if r["patient_id"]]
        if not with_id:
            return None
        return PatientKey(
            patient_id=str(with_id[0]["patient_id"]),
            issuer_of_patient_id=str(with_id[0]["issuer_of_patient_id"]),
            study_instance_uids=tuple(str(r["study_instance_uid"]) for r in rows),
        )

    async def release_expired_priors(self) -> int:
        """A prior fetch whose replica died (its lease ran out) is done again."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE cases SET status = 'complete' WHERE status = 'fetching_priors'"
                " AND NOT priors_done"
                " AND (priors_lease_until IS NULL OR priors_lease_until < now())"
            )
            return cur.rowcount

    async def claim_prior_study(self, hospital_id: str, study_uid: str, case_id: str) -> bool:
        """Attach a prior study to a case before retrieving it; ``False`` if already known."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO studies (hospital_id, study_instance_uid, case_id, role)"
                " VALUES (%s, %s, %s, 'prior') ON CONFLICT DO NOTHING RETURNING case_id",
                (hospital_id, study_uid, case_id),
            )
            return await cur.fetchone() is not None

    async def end_priors(self, case_id: str, flags: list[str]) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE cases SET priors_done = true, status = 'complete',"
                " priors_lease_until = NULL, flags = flags || %s::jsonb WHERE case_id = %s",
                (json.dumps(flags), case_id),
            )

    # ------------------------------------------------------------------ reading

    async def get_case(self, case_id: str) -> CaseRow | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                _CASE_ROW_SELECT + " WHERE c.case_id = %s",
                (case_id,),
            )
            row = await cur.fetchone()
        return None if row is None else _case_row(row)

    async def parked(self, hospital_id: str) -> list[CaseRow]:
        """The hospital's parked cases (studies that came without an intake)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                _CASE_ROW_SELECT + " WHERE c.hospital_id = %s AND c.status = 'parked'"
                " ORDER BY c.created_at",
                (hospital_id,),
            )
            rows = await cur.fetchall()
        return [_case_row(r) for r in rows]


def _case_row(row: dict[str, Any]) -> CaseRow:
    return CaseRow(
        case_id=str(row["case_id"]),
        hospital_id=str(row["hospital_id"]),
        status=str(row["status"]),
        created_at=row["created_at"],
        instances=int(row["n"]),
        source=str(row["source"]),
        parked_reason=row["parked_reason"],
        flags=tuple(str(f) for f in row["flags"]),
        study_instance_uids=tuple(str(s) for s in row["studies"]),
    )
