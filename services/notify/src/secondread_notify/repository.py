"""notify's state (schema ``notify``, PHI zone): delivery contacts, the delivery queue, outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from secondread_notify.delivery import (
    CHANNELS,
    Delivery,
    DeliveryStatus,
    Recipient,
    idempotency_key,
)
from secondread_shared import outbox
from secondread_shared.db import Database
from secondread_shared.events import (
    CaseReceived,
    Event,
    InstanceRef,
    ReportSigned,
    Role,
    new_id,
)

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
    # The delivery queue: the signed-report event to deliver, the idempotency key (written
    # before the send), the persisted retry schedule and the claim of the worker sending it.
    "ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS idempotency_key text",
    "ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS event jsonb",
    "ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz",
    "ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS claimed_until timestamptz",
    "ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS sent_at timestamptz",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_attempt_at)"
    " WHERE status IN ('pending', 'sending')",
    # Where the identity is restored from (one current raw instance of the case), and the
    # audit of every restoration: who, which case and report, for which channel, when.
    "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS identity_ref jsonb",
    "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS patient_delivery_consent boolean"
    " NOT NULL DEFAULT false",
    "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS delivery_channels jsonb",
    """
    CREATE TABLE IF NOT EXISTS identity_reads (
        id        bigserial PRIMARY KEY,
        at        timestamptz NOT NULL DEFAULT now(),
        actor     text NOT NULL,
        purpose   text NOT NULL,
        case_id   text NOT NULL,
        report_id text NOT NULL,
        found     boolean NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS identity_reads_case ON identity_reads (case_id)",
    # Signed reports whose case's contacts notify has not seen yet (its ``case.received`` is
    # late, or never came): kept here, so the consumer commits and moves on; the worker queues
    # their deliveries once the contacts are in, or parks them past the wait with the reason.
    """
    CREATE TABLE IF NOT EXISTS awaiting_contacts (
        report_id text PRIMARY KEY,
        case_id   text NOT NULL,
        event     jsonb NOT NULL,
        since     timestamptz NOT NULL DEFAULT now(),
        status    text NOT NULL DEFAULT 'waiting',
        detail    text NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX IF NOT EXISTS awaiting_contacts_case ON awaiting_contacts (case_id)",
)


class NotifyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save_contacts(self, event: CaseReceived) -> None:
        current = [i for i in event.instances if i.role == Role.CURRENT] or event.instances
        ref = current[0].model_dump_json() if current else None
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO contacts (case_id, hospital_id, physician_name, physician_email,"
                " patient_email, patient_delivery_consent, delivery_channels, identity_ref)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (case_id) DO UPDATE SET"
                " identity_ref = coalesce(contacts.identity_ref, EXCLUDED.identity_ref)",
                (
                    event.case_id,
                    event.hospital_id,
                    event.referring_physician.name,
                    str(event.referring_physician.email),
                    str(event.patient_email) if event.patient_email else None,
                    event.patient_delivery_consent,
                    Jsonb(event.delivery_channels) if event.delivery_channels else None,
                    ref,
                ),
            )

    async def identity_source(
        self, case_id: str, report_id: str, *, actor: str, purpose: str
    ) -> InstanceRef | None:
        """Where the case's identity can be read from; the read is audited whatever the
        outcome (in the same transaction)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT identity_ref FROM contacts WHERE case_id = %s", (case_id,)
            )
            row = await cur.fetchone()
            ref = row["identity_ref"] if row else None
            await conn.execute(
                "INSERT INTO identity_reads (actor, purpose, case_id, report_id, found)"
                " VALUES (%s, %s, %s, %s, %s)",
                (actor, purpose, case_id, report_id, ref is not None),
            )
        return InstanceRef.model_validate(ref) if ref else None

    async def identity_reads(self, case_id: str) -> list[dict[str, Any]]:
        """The audit of a case's identity restorations, oldest first."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT at, actor, purpose, report_id, found FROM identity_reads"
                " WHERE case_id = %s ORDER BY id",
                (case_id,),
            )
            return list(await cur.fetchall())

    async def contacts(self, case_id: str) -> dict[str, Any] | None:
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT * FROM contacts WHERE case_id = %s", (case_id,))
            return await cur.fetchone()

    async def await_contacts(self, event: ReportSigned) -> None:
        """Keep ``event`` until its case's contacts are in (a redelivery keeps it once)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO awaiting_contacts (report_id, case_id, event) VALUES (%s, %s, %s)"
                " ON CONFLICT (report_id) DO NOTHING",
                (event.report_id, event.case_id, event.model_dump_json()),
            )

    async def contacts_arrived(self, limit: int) -> list[tuple[ReportSigned, dict[str, Any]]]:
        """Reports waiting for their case's contacts (or parked without them) whose contacts
        are in now, with those contacts: a late intake still gets its report delivered."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT w.event AS signed_event, c.* FROM awaiting_contacts w"
                " JOIN contacts c USING (case_id)"
                " ORDER BY w.since LIMIT %s",
                (limit,),
            )
            rows = await cur.fetchall()
        return [(ReportSigned.model_validate(r.pop("signed_event")), r) for r in rows]

    async def waited_too_long(self, wait_s: float, limit: int) -> list[ReportSigned]:
        """Reports still waiting for contacts after ``wait_s``."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT event FROM awaiting_contacts WHERE status = 'waiting'"
                " AND since < now() - make_interval(secs => %s) ORDER BY since LIMIT %s",
                (wait_s, limit),
            )
            return [ReportSigned.model_validate(r["event"]) for r in await cur.fetchall()]

    async def park_waiting(self, event: ReportSigned, reason: str, events: list[Event]) -> bool:
        """Park a report that waited too long, with the reason and its events (once across
        replicas: only the replica that parks it writes the events)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE awaiting_contacts SET status = 'parked', detail = %s"
                " WHERE report_id = %s AND status = 'waiting'",
                (reason, event.report_id),
            )
            if cur.rowcount:
                await outbox.enqueue(conn, events)
            return bool(cur.rowcount)

    async def awaiting(self) -> list[dict[str, Any]]:
        """Every report waiting for, or parked without, its contacts (for operators)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT report_id, case_id, since, status, detail FROM awaiting_contacts"
                " ORDER BY since"
            )
            return list(await cur.fetchall())

    async def enqueue(self, event: ReportSigned, recipients: Sequence[Recipient]) -> int:
        """Queue one delivery per recipient of ``event`` (a redelivered event adds nothing);
        return how many were new. A report that waited for its contacts stops waiting, in the
        same transaction."""
        added = 0
        async with self.db.transaction() as conn:
            await conn.execute(
                "DELETE FROM awaiting_contacts WHERE report_id = %s", (event.report_id,)
            )
            for r in recipients:
                cur = await conn.execute(
                    "INSERT INTO deliveries (delivery_id, case_id, report_id, channel,"
                    " recipient_role, status, attempts, idempotency_key, event, next_attempt_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, 0, %s, %s, now())"
                    " ON CONFLICT (report_id, channel, recipient_role) DO NOTHING",
                    (
                        new_id(),
                        event.case_id,
                        event.report_id,
                        r.channel,
                        r.role,
                        DeliveryStatus.PENDING.value,
                        idempotency_key(event.report_id, r.channel, r.role),
                        event.model_dump_json(),
                    ),
                )
                added += cur.rowcount
        return added

    async def claim_due(
        self, limit: int, lease_s: float, channels: Sequence[str] = CHANNELS
    ) -> list[Delivery]:
        """Claim up to ``limit`` deliveries over ``channels`` that are due (pending, or sending
        with an expired claim: a crash between send and mark), counting the attempt before the
        send."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE deliveries SET status = %s, attempts = attempts + 1,"
                " claimed_until = now() + make_interval(secs => %s), updated_at = now()"
                " WHERE delivery_id IN (SELECT delivery_id FROM deliveries"
                "   WHERE status IN (%s, %s) AND next_attempt_at <= now() AND channel = ANY(%s)"
                "   AND (claimed_until IS NULL OR claimed_until < now())"
                "   ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING delivery_id, case_id, report_id, channel, recipient_role, attempts,"
                " idempotency_key, event",
                (
                    DeliveryStatus.SENDING.value,
                    lease_s,
                    DeliveryStatus.PENDING.value,
                    DeliveryStatus.SENDING.value,
                    list(channels),
                    limit,
                ),
            )
            rows = await cur.fetchall()
        return [
            Delivery(
                delivery_id=str(r["delivery_id"]),
                case_id=str(r["case_id"]),
                report_id=str(r["report_id"]),
                channel=str(r["channel"]),
                role=str(r["recipient_role"]),
                attempts=int(r["attempts"]),
                idempotency_key=str(r["idempotency_key"]),
                event=ReportSigned.model_validate(r["event"]),
            )
            for r in rows
        ]

    async def delivered(self, delivery: Delivery, events: list[Event]) -> None:
        """Mark ``delivery`` sent, with its events, in one transaction."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE deliveries SET status = %s, sent_at = now(), claimed_until = NULL,"
                " detail = '', updated_at = now() WHERE delivery_id = %s",
                (DeliveryStatus.DELIVERED.value, delivery.delivery_id),
            )
            await outbox.enqueue(conn, events)

    async def retry_later(self, delivery: Delivery, error: str, delay_s: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE deliveries SET status = %s, detail = %s, claimed_until = NULL,"
                " next_attempt_at = now() + make_interval(secs => %s), updated_at = now()"
                " WHERE delivery_id = %s",
                (DeliveryStatus.PENDING.value, error, delay_s, delivery.delivery_id),
            )

    async def failed(self, delivery: Delivery, error: str, events: list[Event]) -> None:
        """Mark ``delivery`` failed for good, with its events, in one transaction."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE deliveries SET status = %s, detail = %s, claimed_until = NULL,"
                " updated_at = now() WHERE delivery_id = %s",
                (DeliveryStatus.FAILED.value, error, delivery.delivery_id),
            )
            await outbox.enqueue(conn, events)

    async def deliveries(self, report_id: str) -> list[dict[str, Any]]:
        """The delivery rows of ``report_id`` (status, attempts, next attempt), for operators."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT channel, recipient_role, status, attempts, detail, next_attempt_at,"
                " sent_at, idempotency_key FROM deliveries WHERE report_id = %s"
                " ORDER BY recipient_role",
                (report_id,),
            )
            return list(await cur.fetchall())
