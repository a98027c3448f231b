"""notify's handlers: remember delivery contacts; deliver signed reports exactly once in effect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage

from secondread_notify.compose import compose_email
from secondread_notify.repository import NotifyRepository
from secondread_notify.settings import NotifySettings
from secondread_shared.errors import TransientError
from secondread_shared.events import (
    CaseReceived,
    CaseState,
    CaseStatusChanged,
    Event,
    NotificationDelivered,
    NotificationFailed,
    ReportSigned,
    new_id,
)
from secondread_shared.logging import get_logger
from secondread_shared.storage import ObjectStore

log = get_logger(__name__)

SendMail = Callable[[EmailMessage], Awaitable[None]]


class ContactsUnknown(TransientError):
    """The report arrived before the case's contacts (retried, then dead-lettered)."""


@dataclass
class NotifyDeps:
    settings: NotifySettings
    repo: NotifyRepository
    store: ObjectStore
    send_mail: SendMail
    wake_outbox: Callable[[], None]


async def case_received(event: CaseReceived, repo: NotifyRepository) -> None:
    """Keep the delivery contacts of a new case (PHI zone: never logged)."""
    await repo.save_contacts(event)


async def report_signed(event: ReportSigned, deps: NotifyDeps) -> None:
    """Email the signed report to the referring physician and, where the intake gave a patient
    address, to the patient; each once.

    A redelivered event finds each delivery recorded and sends nothing again. A send that fails
    is retried with exponential backoff; when every attempt fails, the failure is recorded and
    announced on ``notification.failed``. The case's status follows the physician's delivery.
    """
    contacts = await deps.repo.contacts(event.case_id)
    if contacts is None:
        raise ContactsUnknown(f"no contacts for case {event.case_id} yet")
    recipients = [("physician", str(contacts["physician_name"]), str(contacts["physician_email"]))]
    if contacts.get("patient_email"):
        recipients.append(("patient", "Patient", str(contacts["patient_email"])))
    canonical: bytes | None = None
    pdf: bytes | None = None
    for role, name, address in recipients:
        done = await deps.repo.delivery(event.report_id, "email", role)
        if done is not None and done["status"] == "delivered":
            log.info("delivery_already_recorded", report_id=event.report_id, role=role)
            continue
        if canonical is None:
            canonical = await deps.store.get_verified(event.report)
            if event.pdf is not None:
                pdf = await deps.store.get_verified(event.pdf)
        message = compose_email(
            report=json.loads(canonical),
            canonical=canonical,
            signature=event.signature,
            key_id=event.key_id,
            to_name=name,
            to_email=address,
            mail_from=deps.settings.mail_from,
            role=role,
            pdf=pdf,
        )
        await _deliver(event, deps, message, role)
    deps.wake_outbox()


async def _deliver(event: ReportSigned, deps: NotifyDeps, message: EmailMessage, role: str) -> None:
    channel = "email"
    attempts, error = 0, ""
    for attempts in range(1, deps.settings.delivery_attempts + 1):
        try:
            await deps.send_mail(message)
            error = ""
            break
        except (OSError, TimeoutError, TransientError) as exc:
            error = type(exc).__name__
            log.warning("delivery_attempt_failed", attempt=attempts, error=error, role=role)
            if attempts < deps.settings.delivery_attempts:
                await asyncio.sleep(deps.settings.delivery_backoff_s * 2 ** (attempts - 1))
    delivery_id = new_id()
    common = {
        "case_id": event.case_id,
        "producer": "notify",
        "causation_id": event.event_id,
        "report_id": event.report_id,
        "channel": channel,
        "recipient_role": role,
        "attempts": attempts,
    }
    outcome: NotificationDelivered | NotificationFailed
    if not error:
        outcome = NotificationDelivered(delivery_id=delivery_id, **common)
        state, detail = CaseState.NOTIFIED, f"{channel} to {role}"
    else:
        outcome = NotificationFailed(reason=error, **common)
        state, detail = CaseState.NOTIFICATION_FAILED, f"{channel} to {role}: {error}"
    events: list[Event] = [outcome]
    if role == "physician":
        events.append(
            CaseStatusChanged(
                case_id=event.case_id,
                producer="notify",
                causation_id=outcome.event_id,
                state=state,
                detail=detail,
            )
        )
    await deps.repo.record_delivery(
        delivery_id=delivery_id,
        case_id=event.case_id,
        report_id=event.report_id,
        channel=channel,
        role=role,
        status="failed" if error else "delivered",
        attempts=attempts,
        detail=error,
        events=events,
    )
    log.info(
        "delivery_recorded", report_id=event.report_id, role=role, ok=not error, attempts=attempts
    )
