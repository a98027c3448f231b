"""notify's delivery handler with small fakes: exactly once in effect, retries, failure event."""

import json
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from secondread_notify.handlers import ContactsUnknown, NotifyDeps, report_signed
from secondread_notify.settings import NotifySettings
from secondread_shared.events import (
    CaseStatusChanged,
    Event,
    NotificationDelivered,
    NotificationFailed,
    ObjectRef,
    ReportSigned,
)
from secondread_shared.storage import sha256_hex

REPORT = {
    "report_id": "r1",
    "case_id": "c1",
    "radiologist_id": "rad",
    "signed_at": "2026-01-01T00:00:00+00:00",
    "credentials": "MD",
    "findings": "Stable.",
    "statements": [],
    "assessment": {"changes": [], "summary": "No change"},
    "recommendations": [],
}
CANONICAL = json.dumps(REPORT).encode()


class FakeRepo:
    def __init__(self, contacts: bool = True, patient_email: str | None = None) -> None:
        self.deliveries: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.events: list[Event] = []
        self._contacts = contacts
        self._patient_email = patient_email

    async def contacts(self, case_id: str) -> dict[str, Any] | None:
        if not self._contacts:
            return None
        return {
            "physician_name": "Dr R",
            "physician_email": "r@example.org",
            "patient_email": self._patient_email,
        }

    async def delivery(self, report_id: str, channel: str, role: str) -> dict[str, Any] | None:
        return self.deliveries.get((report_id, channel, role))

    async def record_delivery(self, **kw: Any) -> None:
        self.deliveries[(kw["report_id"], kw["channel"], kw["role"])] = {"status": kw["status"]}
        self.events.extend(kw["events"])


class FakeStore:
    async def get_verified(self, ref: ObjectRef) -> bytes:
        return CANONICAL


def signed() -> ReportSigned:
    return ReportSigned(
        case_id="c1",
        producer="reporting",
        report_id="r1",
        radiologist_id="rad",
        signed_at=datetime.now(UTC),
        key_id="k",
        signature="c2ln",
        report=ObjectRef(bucket="b", key="k", sha256=sha256_hex(CANONICAL), size=len(CANONICAL)),
        assessment="No change",
    )


def make(repo: FakeRepo, failures: int) -> tuple[NotifyDeps, list[EmailMessage]]:
    sent: list[EmailMessage] = []
    calls = {"n": 0}

    async def send(msg: EmailMessage) -> None:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise ConnectionRefusedError("smtp down")
        sent.append(msg)

    settings = NotifySettings(delivery_attempts=3, delivery_backoff_s=0.0)
    d = NotifyDeps(
        settings=settings,
        repo=repo,
        store=FakeStore(),
        send_mail=send,  # type: ignore[arg-type]
        wake_outbox=lambda: None,
    )
    return d, sent


async def test_delivers_once_even_when_redelivered() -> None:
    repo = FakeRepo()
    d, sent = make(repo, failures=1)
    await report_signed(signed(), d)
    await report_signed(signed(), d)
    assert len(sent) == 1
    [delivered] = [e for e in repo.events if isinstance(e, NotificationDelivered)]
    assert delivered.attempts == 2
    assert sent[0]["To"] == "Dr R <r@example.org>"


async def test_exhausted_retries_announce_failure() -> None:
    repo = FakeRepo()
    d, sent = make(repo, failures=10)
    await report_signed(signed(), d)
    assert sent == []
    [failed] = [e for e in repo.events if isinstance(e, NotificationFailed)]
    assert failed.attempts == 3 and failed.reason == "ConnectionRefusedError"


async def test_unknown_contacts_is_transient() -> None:
    d, _ = make(FakeRepo(contacts=False), failures=0)
    with pytest.raises(ContactsUnknown):
        await report_signed(signed(), d)


async def test_the_patient_gets_the_report_too_where_the_intake_asked() -> None:
    repo = FakeRepo(patient_email="p@example.org")
    d, sent = make(repo, failures=0)
    await report_signed(signed(), d)
    await report_signed(signed(), d)  # redelivered: nothing sent twice
    assert [m["To"] for m in sent] == ["Dr R <r@example.org>", "Patient <p@example.org>"]
    roles = [e.recipient_role for e in repo.events if isinstance(e, NotificationDelivered)]
    assert roles == ["physician", "patient"]
    states = [e.state for e in repo.events if isinstance(e, CaseStatusChanged)]
    assert states == ["notified"]  # the case's status follows the physician's delivery
