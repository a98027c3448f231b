"""ingest's own state in PostgreSQL (schema ``ingest``): intakes, instances and the outbox.

The case row, its instances and the ``case.received`` event are written in one transaction;
:class:`secondread_shared.outbox.OutboxRelay` publishes the event afterwards. A crash
between the two loses nothing: the event waits in the outbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from secondread_shared import outbox
from secondread_shared.db import Database
from secondread_shared.events import Event, InstanceRef

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
)


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    hospital_id: str
    status: str
    created_at: datetime
    instances: int


class IngestRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_case(
        self,
        *,
        case_id: str,
        hospital_id: str,
        intake: dict[str, Any],
        instances: list[InstanceRef],
        events: list[Event],
        trace: dict[str, str],
    ) -> None:
        """Store the intake, its instances and the events to publish, atomically."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO cases (case_id, hospital_id, status, intake) VALUES (%s, %s, %s, %s)",
                (case_id, hospital_id, "received", json.dumps(intake)),
            )
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO instances (case_id, sop_instance_uid, study_instance_uid, bucket,"
                    " key, sha256, size) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    [
                        (
                            case_id,
                            i.sop_instance_uid,
                            i.study_instance_uid,
                            i.bucket,
                            i.key,
                            i.sha256,
                            i.size,
                        )
                        for i in instances
                    ],
                )
            await outbox.enqueue(conn, events, trace)

    async def get_case(self, case_id: str) -> CaseRow | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT c.case_id, c.hospital_id, c.status, c.created_at,"
                " (SELECT count(*) FROM instances i WHERE i.case_id = c.case_id) AS n"
                " FROM cases c WHERE c.case_id = %s",
                (case_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return CaseRow(
            case_id=str(row["case_id"]),
            hospital_id=str(row["hospital_id"]),
            status=str(row["status"]),
            created_at=row["created_at"],
            instances=int(row["n"]),
        )
