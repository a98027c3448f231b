"""The operations tables in routing's schema (migration 3 of
:data:`secondread_routing.repository.MIGRATIONS`).

- ``ops_case_status``: the latest status of every case, a materialised view of the compacted
  status topic. Any replica may apply any event, in any order, any number of times: the upsert
  keeps a row's event only when the new one is later by ``(occurred_at, kafka_offset)``, the rule
  of :func:`secondread_shared.casestatus.supersedes`, and ``first_seen_at`` only ever moves back.
- ``ops_dead_letters``: each dead letter's headers and position, never its payload (routing is
  clear-zone; a PHI-zone letter's payload holds PHI).
- ``ops_replays``: one row per replayed dead letter; its primary key makes a replay happen once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg

from secondread_routing.ops.domain import CaseRow, LetterRef, LetterRow, Replay
from secondread_shared.casestatus import CaseStatus
from secondread_shared.db import Database
from secondread_shared.deadletters import DeadLetter

MIGRATIONS: tuple[tuple[int, Sequence[str]], ...] = (
    (
        3,
        (
            """
            CREATE TABLE ops_case_status (
                case_id         text PRIMARY KEY,
                state           text NOT NULL,
                producer        text NOT NULL,
                detail          text NOT NULL,
                occurred_at     timestamptz NOT NULL,
                kafka_partition integer NOT NULL,
                kafka_offset    bigint NOT NULL,
                event_id        text NOT NULL,
                first_seen_at   timestamptz NOT NULL,
                updated_at      timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX ops_case_status_state ON ops_case_status (state, occurred_at)",
            "CREATE INDEX ops_case_status_recent ON ops_case_status (occurred_at DESC)",
            """
            CREATE TABLE ops_dead_letters (
                dlq_topic        text NOT NULL,
                dlq_partition    integer NOT NULL,
                dlq_offset       bigint NOT NULL,
                case_id          text NOT NULL,
                source_topic     text NOT NULL,
                source_partition integer,
                source_offset    bigint,
                service          text NOT NULL,
                attempts         integer,
                reason           text NOT NULL,
                dead_lettered_at timestamptz NOT NULL,
                replayed_from    text NOT NULL DEFAULT '',
                indexed_at       timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
            )
            """,
            "CREATE INDEX ops_dead_letters_recent ON ops_dead_letters (dead_lettered_at DESC)",
            """
            CREATE TABLE ops_replays (
                dlq_topic     text NOT NULL,
                dlq_partition integer NOT NULL,
                dlq_offset    bigint NOT NULL,
                operator      text NOT NULL,
                requested_at  timestamptz NOT NULL,
                target_topic  text NOT NULL DEFAULT '',
                published_at  timestamptz,
                PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
            )
            """,
        ),
    ),
)

_CASES = (
    "SELECT s.*, c.due_at, c.priority, c.subspecialty, a.radiologist_id"
    " FROM ops_case_status s"
    " LEFT JOIN cases c ON c.case_id = s.case_id"
    " LEFT JOIN assignments a ON a.case_id = s.case_id AND a.closed_at IS NULL"
)
_LETTERS = (
    "SELECT d.*, r.operator, r.requested_at, r.target_topic, r.published_at"
    " FROM ops_dead_letters d LEFT JOIN ops_replays r"
    " ON r.dlq_topic = d.dlq_topic AND r.dlq_partition = d.dlq_partition"
    " AND r.dlq_offset = d.dlq_offset AND r.published_at IS NOT NULL"
)


def _case(row: dict[str, Any]) -> CaseRow:
    return CaseRow(
        status=CaseStatus(
            case_id=str(row["case_id"]),
            state=str(row["state"]),
            producer=str(row["producer"]),
            detail=str(row["detail"]),
            occurred_at=row["occurred_at"],
            partition=int(row["kafka_partition"]),
            offset=int(row["kafka_offset"]),
            event_id=str(row["event_id"]),
        ),
        first_seen_at=row["first_seen_at"],
        due_at=row["due_at"],
        priority=str(row["priority"] or ""),
        subspecialty=str(row["subspecialty"] or ""),
        reader=str(row["radiologist_id"] or ""),
    )


def _ref(row: dict[str, Any]) -> LetterRef:
    return LetterRef(str(row["dlq_topic"]), int(row["dlq_partition"]), int(row["dlq_offset"]))


def _replay(row: dict[str, Any]) -> Replay | None:
    if row.get("published_at") is None:
        return None
    return Replay(
        ref=_ref(row),
        operator=str(row["operator"]),
        requested_at=row["requested_at"],
        target_topic=str(row["target_topic"]),
        published_at=row["published_at"],
    )


def _letter(row: dict[str, Any]) -> LetterRow:
    letter = DeadLetter(
        topic=str(row["dlq_topic"]),
        partition=int(row["dlq_partition"]),
        offset=int(row["dlq_offset"]),
        case_id=str(row["case_id"]),
        source_topic=str(row["source_topic"]),
        source_partition=row["source_partition"],
        source_offset=row["source_offset"],
        service=str(row["service"]),
        attempts=row["attempts"],
        reason=str(row["reason"]),
        dead_lettered_at=row["dead_lettered_at"],
        replayed_from=str(row["replayed_from"]),
    )
    return LetterRow(letter, _replay(row))


class PgClaim:
    """:class:`~secondread_routing.ops.ports.ReplayClaim` on one transaction."""

    def __init__(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], ref: LetterRef, previous: Replay | None
    ) -> None:
        self.conn = conn
        self.ref = ref
        self.previous = previous

    async def published(self, target_topic: str, at: datetime) -> Replay:
        cur = await self.conn.execute(
            "UPDATE ops_replays SET target_topic = %s, published_at = %s"
            " WHERE dlq_topic = %s AND dlq_partition = %s AND dlq_offset = %s RETURNING *",
            (target_topic, at, self.ref.topic, self.ref.partition, self.ref.offset),
        )
        row = await cur.fetchone()
        replay = _replay(row) if row else None
        if replay is None:  # pragma: no cover - the claim's row is locked by this transaction
            raise RuntimeError(f"the replay record of {self.ref} vanished")
        return replay


class OpsRepository:
    """:class:`~secondread_routing.ops.ports.StatusView`, ``LetterIndex`` and ``ReplayLedger``
    on routing's schema."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _all(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(sql.encode(), params)
            return list(await cur.fetchall())

    # ---- the status view -----------------------------------------------------------------

    async def upsert(self, status: CaseStatus) -> bool:
        s = status
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO ops_case_status AS s (case_id, state, producer, detail, occurred_at,"
                " kafka_partition, kafka_offset, event_id, first_seen_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (case_id) DO UPDATE SET state = EXCLUDED.state,"
                " producer = EXCLUDED.producer, detail = EXCLUDED.detail,"
                " occurred_at = EXCLUDED.occurred_at, kafka_partition = EXCLUDED.kafka_partition,"
                " kafka_offset = EXCLUDED.kafka_offset, event_id = EXCLUDED.event_id,"
                " first_seen_at = LEAST(s.first_seen_at, EXCLUDED.first_seen_at),"
                " updated_at = now()"
                " WHERE (EXCLUDED.occurred_at, EXCLUDED.kafka_offset)"
                " > (s.occurred_at, s.kafka_offset)"
                " RETURNING case_id",
                (s.case_id, s.state, s.producer, s.detail, s.occurred_at, s.partition, s.offset,
                 s.event_id, s.occurred_at),
            )  # fmt: skip
            if await cur.fetchone():
                return True
            await conn.execute(
                "UPDATE ops_case_status SET first_seen_at = %s"
                " WHERE case_id = %s AND first_seen_at > %s",
                (s.occurred_at, s.case_id, s.occurred_at),
            )
            return False

    async def counts(self) -> dict[str, int]:
        rows = await self._all(
            "SELECT state, count(*) AS n FROM ops_case_status GROUP BY state ORDER BY state"
        )
        return {str(r["state"]): int(r["n"]) for r in rows}

    async def recent(self, state: str | None, limit: int) -> list[CaseRow]:
        if state is None:
            rows = await self._all(f"{_CASES} ORDER BY s.occurred_at DESC LIMIT %s", (limit,))
        else:
            rows = await self._all(
                f"{_CASES} WHERE s.state = %s ORDER BY s.occurred_at DESC LIMIT %s",
                (state, limit),
            )
        return [_case(r) for r in rows]

    async def in_states(self, states: Collection[str], limit: int) -> list[CaseRow]:
        rows = await self._all(
            f"{_CASES} WHERE s.state = ANY(%s) ORDER BY s.occurred_at LIMIT %s",
            (sorted(states), limit),
        )
        return [_case(r) for r in rows]

    async def open_with_due(self, exclude: Collection[str], limit: int) -> list[CaseRow]:
        rows = await self._all(
            f"{_CASES} WHERE c.due_at IS NOT NULL AND NOT (s.state = ANY(%s))"
            " ORDER BY c.due_at LIMIT %s",
            (sorted(exclude), limit),
        )
        return [_case(r) for r in rows]

    # ---- the dead-letter index -----------------------------------------------------------

    async def add(self, letter: DeadLetter) -> None:
        d = letter
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO ops_dead_letters (dlq_topic, dlq_partition, dlq_offset, case_id,"
                " source_topic, source_partition, source_offset, service, attempts, reason,"
                " dead_lettered_at, replayed_from)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (d.topic, d.partition, d.offset, d.case_id, d.source_topic, d.source_partition,
                 d.source_offset, d.service, d.attempts, d.reason, d.dead_lettered_at,
                 d.replayed_from),
            )  # fmt: skip

    async def letters(self, limit: int) -> tuple[list[LetterRow], int, int]:
        rows = await self._all(
            f"{_LETTERS} ORDER BY d.dead_lettered_at DESC, d.dlq_offset DESC LIMIT %s", (limit,)
        )
        [totals] = await self._all(
            "SELECT count(*) AS total, count(*) FILTER (WHERE r.published_at IS NULL) AS open"
            " FROM ops_dead_letters d LEFT JOIN ops_replays r"
            " ON r.dlq_topic = d.dlq_topic AND r.dlq_partition = d.dlq_partition"
            " AND r.dlq_offset = d.dlq_offset"
        )
        return [_letter(r) for r in rows], int(totals["total"]), int(totals["open"])

    async def letter(self, ref: LetterRef) -> LetterRow | None:
        rows = await self._all(
            f"{_LETTERS} WHERE d.dlq_topic = %s AND d.dlq_partition = %s AND d.dlq_offset = %s",
            (ref.topic, ref.partition, ref.offset),
        )
        return _letter(rows[0]) if rows else None

    # ---- the replay ledger ---------------------------------------------------------------

    @asynccontextmanager
    async def claim(self, ref: LetterRef, operator: str, at: datetime) -> AsyncIterator[PgClaim]:
        async with self.db.transaction() as conn:
            # A second claim of the same letter waits here until the first one commits (then
            # finds its row) or rolls back (then inserts its own).
            cur = await conn.execute(
                "INSERT INTO ops_replays (dlq_topic, dlq_partition, dlq_offset, operator,"
                " requested_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                " RETURNING dlq_topic",
                (ref.topic, ref.partition, ref.offset, operator, at),
            )
            previous: Replay | None = None
            if await cur.fetchone() is None:
                cur = await conn.execute(
                    "SELECT * FROM ops_replays WHERE dlq_topic = %s AND dlq_partition = %s"
                    " AND dlq_offset = %s FOR UPDATE",
                    (ref.topic, ref.partition, ref.offset),
                )
                row = await cur.fetchone()
                previous = _replay(row) if row else None
            yield PgClaim(conn, ref, previous)
