"""notify's use cases, written against the ports below.

1. :func:`queue_deliveries` (on ``report.signed``): one delivery per recipient is queued in
   PostgreSQL; nothing is sent in the consumer, so a failing channel never holds a partition.
2. :func:`deliver` (by :class:`DeliveryWorker`, on every replica): a due delivery is claimed (its
   attempt and idempotency key written first), sent, and marked delivered with its events; a
   failed attempt is scheduled again with backoff, and past the limit the delivery fails with
   ``notification.failed`` and the case's status ``notification_failed``.

Exactly once in effect: a redelivered ``report.signed`` queues nothing new; a worker that dies
between send and mark leaves a claim that expires, and the one resend carries the same
idempotency key (for email, the same Message-ID).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from secondread_notify.channels import (
    Channel,
    DicomChannel,
    DicomSender,
    EmailChannel,
    EmailSender,
    FhirChannel,
    FhirSender,
    Message,
    Sender,
    SendFailed,
    WebhookChannel,
    WebhookSender,
)
from secondread_notify.cover import cover_page, delivery_copy, signer_of
from secondread_notify.delivery import Delivery, Recipient, backoff_s
from secondread_notify.errors import ContactsUnknown
from secondread_notify.identity import PatientIdentity, read_identity
from secondread_notify.settings import NotifySettings
from secondread_shared.events import (
    CaseState,
    CaseStatusChanged,
    Event,
    InstanceRef,
    NotificationDelivered,
    NotificationFailed,
    ObjectRef,
    ReportSigned,
)
from secondread_shared.logging import bind_case, get_logger, unbind_case
from secondread_shared.loops import DrainLoop

log = get_logger(__name__)

SendMail = Callable[[EmailMessage], Awaitable[None]]
SenderFor = Callable[[str, str], Sender]


class DeliveryRepository(Protocol):
    async def contacts(self, case_id: str) -> dict[str, Any] | None: ...

    async def identity_source(
        self, case_id: str, report_id: str, *, actor: str, purpose: str
    ) -> InstanceRef | None: ...

    async def enqueue(self, event: ReportSigned, recipients: Sequence[Recipient]) -> int: ...

    async def await_contacts(self, event: ReportSigned) -> None: ...

    async def contacts_arrived(self, limit: int) -> list[tuple[ReportSigned, dict[str, Any]]]: ...

    async def waited_too_long(self, wait_s: float, limit: int) -> list[ReportSigned]: ...

    async def park_waiting(self, event: ReportSigned, reason: str, events: list[Event]) -> bool: ...

    async def claim_due(
        self, limit: int, lease_s: float, channels: Sequence[str] = ...
    ) -> list[Delivery]: ...

    async def delivered(self, delivery: Delivery, events: list[Event]) -> None: ...

    async def retry_later(self, delivery: Delivery, error: str, delay_s: float) -> None: ...

    async def failed(self, delivery: Delivery, error: str, events: list[Event]) -> None: ...


class ReportStore(Protocol):
    async def get_verified(self, ref: ObjectRef) -> bytes: ...


IDENTITY_CHANNELS = frozenset({"email", "dicom", "fhir"})
"""Channels whose delivery copy carries the restored identity (the cover page; the DICOM
header; the FHIR subject). The webhook carries the signed documents as signed, pseudonymous."""


@dataclass
class NotifyDeps:
    settings: NotifySettings
    repo: DeliveryRepository
    store: ReportStore
    senders: SenderFor
    """The sender of a channel kind for a hospital (see :func:`channel_senders`)."""
    wake_outbox: Callable[[], None]
    wake_worker: Callable[[], None] = lambda: None


def channel_senders(
    settings: NotifySettings, send_mail: SendMail, client: httpx.AsyncClient | None = None
) -> SenderFor:
    """The registry: each channel kind's sender, built from the hospital's configuration."""

    def sender(kind: str, hospital_id: str) -> Sender:
        channel = next((c for c in settings.channels(hospital_id) if c.kind == kind), None)
        if isinstance(channel, WebhookChannel):
            return WebhookSender(channel, client)
        if isinstance(channel, DicomChannel):
            return DicomSender(channel)
        if isinstance(channel, FhirChannel):
            return FhirSender(channel, client)
        if isinstance(channel, EmailChannel):
            return EmailSender(send_mail, settings.mail_from, channel)
        raise SendFailed(f"channel {kind} is not configured for the hospital", permanent=True)

    return sender


def recipients(contacts: dict[str, Any], channels: Sequence[Channel]) -> list[Recipient]:
    """Who gets the report over which channel: by email the referring physician, and the
    patient where the intake gave an address and the patient's consent to delivery; by
    webhook, FHIR and DICOM the hospital."""
    out: list[Recipient] = []
    physician = (str(contacts["physician_name"]), str(contacts["physician_email"]))
    for channel in channels:
        if channel.kind == "email":
            out.append(Recipient("physician", *physician, channel="email"))
            if contacts.get("patient_email") and contacts.get("patient_delivery_consent"):
                out.append(Recipient("patient", "Patient", str(contacts["patient_email"]), "email"))
        else:
            out.append(Recipient("physician", physician[0], "", channel=channel.kind))
    return out


def case_channels(hospital: Sequence[Channel], contacts: dict[str, Any]) -> list[Channel]:
    """The hospital's channels this case asked for (the intake's ``delivery_channels``), or
    all of them. A kind the hospital has not configured is ignored: a case chooses among its
    hospital's channels, it cannot add one."""
    chosen = contacts.get("delivery_channels")
    if not chosen:
        return list(hospital)
    return [c for c in hospital if c.kind in set(chosen)]


async def queue_deliveries(event: ReportSigned, deps: NotifyDeps) -> None:
    """Queue the deliveries of a signed report (idempotent) and wake the worker.

    A report whose case's contacts are not in yet (its ``case.received`` is late) waits in
    PostgreSQL instead of holding the consumer: the worker queues it once they arrive (see
    :func:`release_waiting`)."""
    contacts = await deps.repo.contacts(event.case_id)
    if contacts is None:
        await deps.repo.await_contacts(event)
        log.warning("deliveries_await_contacts", report_id=event.report_id)
        deps.wake_worker()
        return
    await _enqueue(event, contacts, deps)
    deps.wake_worker()


async def _enqueue(event: ReportSigned, contacts: dict[str, Any], deps: NotifyDeps) -> None:
    channels = case_channels(deps.settings.channels(str(contacts["hospital_id"])), contacts)
    added = await deps.repo.enqueue(event, recipients(contacts, channels))
    log.info("deliveries_queued", report_id=event.report_id, new=added)


async def release_waiting(deps: NotifyDeps, batch: int) -> int:
    """Queue the deliveries of reports whose contacts have arrived; park, with the reason and
    the case's status ``notification_failed``, those that waited past ``contacts_wait_s`` (a
    parked report is still delivered if its contacts come later). Return how many moved."""
    moved = 0
    for event, contacts in await deps.repo.contacts_arrived(batch):
        bind_case(event.case_id)
        try:
            await _enqueue(event, contacts, deps)
        finally:
            unbind_case()
        moved += 1
    wait_s = deps.settings.contacts_wait_s
    for event in await deps.repo.waited_too_long(wait_s, batch):
        reason = (
            f"no delivery contacts for the case after {wait_s:g} s: notify never received"
            " its secondread.phi.case.received.v1"
        )
        status = CaseStatusChanged(
            case_id=event.case_id,
            producer="notify",
            causation_id=event.event_id,
            state=CaseState.NOTIFICATION_FAILED,
            detail=reason,
        )
        if await deps.repo.park_waiting(event, reason, [status]):
            bind_case(event.case_id)
            log.warning("deliveries_parked", report_id=event.report_id, reason=reason)
            unbind_case()
            deps.wake_outbox()
            moved += 1
    return moved


async def deliver(delivery: Delivery, deps: NotifyDeps) -> None:
    """Send one claimed delivery and record the outcome (see the module docstring)."""
    settings = deps.settings
    try:
        message, hospital_id = await _message(delivery, deps)
        sender = deps.senders(delivery.channel, hospital_id)
        await asyncio.wait_for(sender.send(message), timeout=settings.send_timeout_s)
    except (SendFailed, TimeoutError, ContactsUnknown) as exc:
        error = exc.reason if isinstance(exc, SendFailed) else type(exc).__name__
        permanent = isinstance(exc, SendFailed) and exc.permanent
        if not permanent and delivery.attempts < settings.delivery_attempts:
            delay = backoff_s(
                delivery.attempts, settings.delivery_backoff_s, settings.delivery_backoff_max_s
            )
            await deps.repo.retry_later(delivery, error, delay)
            log.warning(
                "delivery_attempt_failed",
                report_id=delivery.report_id,
                channel=delivery.channel,
                role=delivery.role,
                attempt=delivery.attempts,
                error=error,
                retry_in_s=round(delay, 1),
            )
            return
        await deps.repo.failed(delivery, error, _outcome(delivery, error))
        log.warning(
            "delivery_failed",
            report_id=delivery.report_id,
            channel=delivery.channel,
            role=delivery.role,
            error=error,
        )
    else:
        await deps.repo.delivered(delivery, _outcome(delivery, ""))
        log.info(
            "delivery_recorded",
            report_id=delivery.report_id,
            channel=delivery.channel,
            role=delivery.role,
            attempts=delivery.attempts,
        )
    deps.wake_outbox()


async def _message(delivery: Delivery, deps: NotifyDeps) -> tuple[Message, str]:
    event = delivery.event
    contacts = await deps.repo.contacts(delivery.case_id)
    if contacts is None:
        raise ContactsUnknown(f"no contacts for case {delivery.case_id}")
    hospital_id = str(contacts["hospital_id"])
    channels = deps.settings.channels(hospital_id)
    recipient = next(
        (
            r
            for r in recipients(contacts, channels)
            if r.role == delivery.role and r.channel == delivery.channel
        ),
        Recipient(delivery.role, "", "", delivery.channel),  # EmailSender needs an address
    )
    canonical = await deps.store.get_verified(event.report)
    pdf = await deps.store.get_verified(event.pdf) if event.pdf is not None else None
    fhir = await deps.store.get_verified(event.fhir) if event.fhir is not None else None
    report = json.loads(canonical)
    verify_url = f"{deps.settings.verify_url_base}/v1/reports/{event.report_id}/verify"
    identity, copy, evidence = None, None, None
    if delivery.channel in IDENTITY_CHANNELS:
        restored = await restore_identity(delivery, hospital_id, deps)
        if restored is not None:
            identity, evidence = restored
            copy = await asyncio.to_thread(_delivery_copy, identity, report, event, pdf, verify_url)
    message = Message(
        event=event,
        canonical=canonical,
        report=report,
        pdf=pdf,
        fhir=fhir,
        idempotency_key=delivery.idempotency_key,
        role=delivery.role,
        recipient_name=recipient.name,
        recipient_address=recipient.address,
        identity=identity,
        delivery_pdf=copy,
        evidence=evidence,
        verify_url=verify_url,
    )
    return message, hospital_id


async def restore_identity(
    delivery: Delivery, hospital_id: str, deps: NotifyDeps
) -> tuple[PatientIdentity, bytes] | None:
    """The patient's identity, for this delivery only, and the instance it was read from: one of
    the case's own raw instances (PHI zone), the read audited (who, case, report, channel,
    when)."""
    ref = await deps.repo.identity_source(
        delivery.case_id, delivery.report_id, actor="notify", purpose=delivery.channel
    )
    if ref is None:
        return None
    header = await deps.store.get_verified(ref)
    try:
        return read_identity(header, default_issuer=hospital_id), header
    except ValueError:
        return None


def _delivery_copy(
    identity: PatientIdentity,
    report: dict[str, Any],
    event: ReportSigned,
    pdf: bytes | None,
    verify_url: str,
) -> bytes:
    signer = signer_of(report, event.key_id, verify_url)
    cover = cover_page(
        identity,
        case_id=event.case_id,
        report_id=event.report_id,
        assessment=event.assessment,
        signer=signer,
    )
    return delivery_copy(cover, pdf)


def _outcome(delivery: Delivery, error: str) -> list[Event]:
    common: dict[str, Any] = {
        "case_id": delivery.case_id,
        "producer": "notify",
        "causation_id": delivery.event.event_id,
        "report_id": delivery.report_id,
        "channel": delivery.channel,
        "recipient_role": delivery.role,
        "attempts": delivery.attempts,
    }
    outcome: NotificationDelivered | NotificationFailed
    if not error:
        outcome = NotificationDelivered(delivery_id=delivery.delivery_id, **common)
        state, detail = CaseState.NOTIFIED, f"{delivery.channel} to {delivery.role}"
    else:
        outcome = NotificationFailed(reason=error, **common)
        state = CaseState.NOTIFICATION_FAILED
        detail = f"{delivery.channel} to {delivery.role}: {error}"
    events: list[Event] = [outcome]
    if delivery.role == "physician":  # the case's status follows the physician's delivery
        events.append(
            CaseStatusChanged(
                case_id=delivery.case_id,
                producer="notify",
                causation_id=outcome.event_id,
                state=state,
                detail=detail,
            )
        )
    return events


class DeliveryWorker:
    """Runs due deliveries on this replica: claims them with ``FOR UPDATE SKIP LOCKED``, so two
    replicas never send the same delivery at once. Wakes at once after :meth:`wake`, and polls
    every ``poll_s`` for retries that come due."""

    def __init__(self, deps: NotifyDeps, *, poll_s: float = 1.0, batch: int = 10) -> None:
        self.deps = deps
        self.batch = batch
        self._loop = DrainLoop(
            self.run_due, poll_s=poll_s, name="delivery-worker", event="delivery_round_failed"
        )
        self.wake, self.start, self.stop = self._loop.wake, self._loop.start, self._loop.stop

    async def run_due(self) -> int:
        """Release the reports whose contacts came, then claim and deliver what is due once;
        return how many were moved or tried."""
        moved = await release_waiting(self.deps, self.batch)
        claimed = await self.deps.repo.claim_due(self.batch, self.deps.settings.delivery_lease_s)
        for delivery in claimed:
            bind_case(delivery.case_id)
            try:
                await deliver(delivery, self.deps)
            finally:
                unbind_case()
        return moved + len(claimed)
