"""notify's delivery use cases with a small in-memory queue: queued once, sent by the worker,
retried on a schedule, failed past the limit; the consumer never sends."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from secondread_notify.delivery import Delivery, Recipient, backoff_s, idempotency_key
from secondread_notify.service import (
    DeliveryWorker,
    NotifyDeps,
    channel_senders,
    queue_deliveries,
)
from secondread_notify.settings import NotifySettings
from secondread_shared.events import (
    CaseStatusChanged,
    Event,
    InstanceRef,
    NotificationDelivered,
    NotificationFailed,
    ObjectRef,
    ReportSigned,
)
from secondread_shared.storage import sha256_hex
from tests.synthetic import Patient, ct_study

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


@dataclass
class Row:
    delivery: Delivery
    status: str = "pending"
    due: bool = True
    error: str = ""


@dataclass
class FakeRepo:
    """The queue's semantics in memory: one row per (report, channel, role); a claim counts the
    attempt; ``retry_later`` makes a row due only when the test says time has passed."""

    patient_email: str | None = None
    patient_consent: bool = True
    known: bool = True
    rows: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    identity_reads: list[tuple[str, str, str, str]] = field(default_factory=list)
    waiting: dict[str, ReportSigned] = field(default_factory=dict)
    parked: dict[str, str] = field(default_factory=dict)

    async def contacts(self, case_id: str) -> dict[str, Any] | None:
        if not self.known:
            return None
        return self._contacts()

    def _contacts(self) -> dict[str, Any]:
        return {
            "hospital_id": "h1",
            "physician_name": "Dr R",
            "physician_email": "r@example.org",
            "patient_email": self.patient_email,
            "patient_delivery_consent": self.patient_consent,
        }

    async def await_contacts(self, event: ReportSigned) -> None:
        self.waiting.setdefault(event.report_id, event)

    async def contacts_arrived(self, limit: int) -> list[tuple[ReportSigned, dict[str, Any]]]:
        return [(e, self._contacts()) for e in self.waiting.values()] if self.known else []

    async def waited_too_long(self, wait_s: float, limit: int) -> list[ReportSigned]:
        return [e for r, e in self.waiting.items() if r not in self.parked] if wait_s <= 0 else []

    async def park_waiting(self, event: ReportSigned, reason: str, events: list[Event]) -> bool:
        if event.report_id in self.parked:
            return False
        self.parked[event.report_id] = reason
        self.events.extend(events)
        return True

    async def enqueue(self, event: ReportSigned, recipients: Sequence[Recipient]) -> int:
        self.waiting.pop(event.report_id, None)
        self.parked.pop(event.report_id, None)
        added = 0
        for r in recipients:
            key = (event.report_id, r.channel, r.role)
            if key not in self.rows:
                self.rows[key] = Row(
                    Delivery(
                        delivery_id=f"d-{r.role}",
                        case_id=event.case_id,
                        report_id=event.report_id,
                        channel=r.channel,
                        role=r.role,
                        attempts=0,
                        idempotency_key=idempotency_key(event.report_id, r.channel, r.role),
                        event=event,
                    )
                )
                added += 1
        return added

    async def claim_due(
        self, limit: int, lease_s: float, channels: Sequence[str] = ("email",)
    ) -> list[Delivery]:
        out = []
        for row in self.rows.values():
            if row.status == "pending" and row.due and len(out) < limit:
                row.delivery = replace(row.delivery, attempts=row.delivery.attempts + 1)
                row.status = "sending"
                out.append(row.delivery)
        return out

    def _row(self, d: Delivery) -> Row:
        return self.rows[(d.report_id, d.channel, d.role)]

    async def delivered(self, delivery: Delivery, events: list[Event]) -> None:
        self._row(delivery).status = "delivered"
        self.events.extend(events)

    async def retry_later(self, delivery: Delivery, error: str, delay_s: float) -> None:
        row = self._row(delivery)
        row.status, row.due, row.error = "pending", False, error
        self.delays.append(delay_s)

    async def failed(self, delivery: Delivery, error: str, events: list[Event]) -> None:
        self._row(delivery).status = "failed"
        self.events.extend(events)

    async def identity_source(
        self, case_id: str, report_id: str, *, actor: str, purpose: str
    ) -> InstanceRef | None:
        self.identity_reads.append((actor, purpose, case_id, report_id))
        return IDENTITY_REF

    def time_passes(self) -> None:
        for row in self.rows.values():
            row.due = True


HEADER = ct_study(Patient(), count=1, size=4)[0]
IDENTITY_REF = InstanceRef(
    bucket="raw", key="cases/c1/x.dcm", sha256=sha256_hex(HEADER), size=len(HEADER),
    study_instance_uid="1.2", series_instance_uid="1.2.3", sop_instance_uid="1.2.3.4",
    sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
)  # fmt: skip


class FakeStore:
    async def get_verified(self, ref: ObjectRef) -> bytes:
        return HEADER if ref.bucket == "raw" else CANONICAL


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


def make(
    repo: FakeRepo, failures: int = 0, settings: NotifySettings | None = None
) -> tuple[NotifyDeps, list[EmailMessage], DeliveryWorker]:
    """Deps with a fake SMTP whose first ``failures`` sends fail, the emails it took, a worker."""
    sent: list[EmailMessage] = []
    calls = {"n": 0}

    async def send(msg: EmailMessage) -> None:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise ConnectionRefusedError("smtp down")
        sent.append(msg)

    settings = settings or NotifySettings(delivery_attempts=3, delivery_backoff_s=2.0)
    deps = NotifyDeps(
        settings=settings,
        repo=repo,
        store=FakeStore(),
        senders=channel_senders(settings, send),
        wake_outbox=lambda: None,
    )
    return deps, sent, DeliveryWorker(deps)


async def test_the_consumer_queues_and_never_sends_and_a_redelivery_queues_nothing() -> None:
    repo = FakeRepo()
    deps, sent, worker = make(repo, failures=0)
    await queue_deliveries(signed(), deps)
    await queue_deliveries(signed(), deps)  # redelivered
    assert sent == [] and len(repo.rows) == 1
    assert await worker.run_due() == 1
    assert await worker.run_due() == 0
    assert len(sent) == 1 and sent[0]["To"] == "Dr R <r@example.org>"
    assert sent[0]["Message-ID"] == "<r1.physician@secondread.invalid>"
    # the body names the patient by initials; the identity is on the attached cover page
    body = sent[0].get_body(("plain",))
    assert body is not None and "(patient A. Q.)" in body.get_content()
    assert "Quixote" not in body.get_content() and "MRN-4242" not in body.get_content()
    names = [p.get_filename() for p in sent[0].iter_attachments()]
    assert names == ["report.pdf", "report.json", "report.sig.json"]
    assert repo.identity_reads == [("notify", "email", "c1", "r1")]  # the read is audited


async def test_a_failed_attempt_is_scheduled_again_with_backoff_not_slept_on() -> None:
    repo = FakeRepo()
    deps, sent, worker = make(repo, failures=1)
    await queue_deliveries(signed(), deps)
    assert await worker.run_due() == 1
    assert sent == [] and await worker.run_due() == 0  # not due yet: the worker did not wait
    assert 1.0 <= repo.delays[0] <= 3.0  # 2 s, with jitter
    repo.time_passes()
    await worker.run_due()
    [delivered] = [e for e in repo.events if isinstance(e, NotificationDelivered)]
    assert delivered.attempts == 2 and len(sent) == 1


async def test_past_the_limit_the_delivery_fails_and_says_so() -> None:
    repo = FakeRepo()
    deps, sent, worker = make(repo, failures=10)
    await queue_deliveries(signed(), deps)
    for _ in range(5):
        await worker.run_due()
        repo.time_passes()
    assert sent == []
    [failed] = [e for e in repo.events if isinstance(e, NotificationFailed)]
    assert failed.attempts == 3 and failed.reason == "ConnectionRefusedError"
    [status] = [e for e in repo.events if isinstance(e, CaseStatusChanged)]
    assert status.state == "notification_failed" and "email to physician" in status.detail


async def test_a_report_signed_before_its_contacts_arrive_waits_and_is_sent_once_they_do() -> None:
    repo = FakeRepo(known=False)
    deps, sent, worker = make(repo, failures=0)
    await queue_deliveries(signed(), deps)  # returns: the consumer is not held
    await queue_deliveries(signed(), deps)  # redelivered: still one waiting
    assert list(repo.waiting) == ["r1"] and repo.rows == {}
    assert await worker.run_due() == 0 and sent == []
    repo.known = True  # case.received came in late
    await worker.run_due()
    await worker.run_due()
    assert repo.waiting == {} and [m["To"] for m in sent] == ["Dr R <r@example.org>"]


async def test_a_report_whose_contacts_never_come_is_parked_once_with_the_reason() -> None:
    repo = FakeRepo(known=False)
    deps, sent, worker = make(repo, settings=NotifySettings(contacts_wait_s=0))
    await queue_deliveries(signed(), deps)
    await worker.run_due()
    await worker.run_due()
    [status] = repo.events
    assert isinstance(status, CaseStatusChanged) and status.state == "notification_failed"
    assert "no delivery contacts" in status.detail and "case.received" in repo.parked["r1"]
    assert sent == []
    repo.known = True  # contacts after all: the parked report is still delivered
    await worker.run_due()
    await worker.run_due()
    assert [m["To"] for m in sent] == ["Dr R <r@example.org>"] and repo.parked == {}


async def test_the_patient_gets_the_report_too_where_the_intake_asked() -> None:
    repo = FakeRepo(patient_email="p@example.org")
    deps, sent, worker = make(repo, failures=0)
    await queue_deliveries(signed(), deps)
    await worker.run_due()
    assert [m["To"] for m in sent] == ["Dr R <r@example.org>", "Patient <p@example.org>"]
    roles = [e.recipient_role for e in repo.events if isinstance(e, NotificationDelivered)]
    assert roles == ["physician", "patient"]
    states = [e.state for e in repo.events if isinstance(e, CaseStatusChanged)]
    assert states == ["notified"]  # the case's status follows the physician's delivery


async def test_no_email_to_a_patient_without_consent() -> None:
    repo = FakeRepo(patient_email="p@example.org", patient_consent=False)
    deps, sent, worker = make(repo, failures=0)
    await queue_deliveries(signed(), deps)
    await worker.run_due()
    assert [m["To"] for m in sent] == ["Dr R <r@example.org>"]


def test_backoff_doubles_and_is_capped() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff_s(n, 2.0, 30.0, rng) for n in range(1, 8)]
    assert 1.0 <= delays[0] <= 3.0 and 4.0 <= delays[2] <= 12.0
    assert all(d <= 45.0 for d in delays)


async def test_a_failing_channel_never_holds_back_another() -> None:
    from secondread_notify.channels import EmailChannel, WebhookChannel

    repo = FakeRepo()
    settings = NotifySettings(
        delivery_attempts=3,
        delivery_channels={
            "h1": [
                EmailChannel(),
                WebhookChannel(url="http://127.0.0.1:9/hook", secret="s"),  # type: ignore[arg-type]
            ]
        },
    )
    deps, sent, worker = make(repo, settings=settings)
    await queue_deliveries(signed(), deps)
    assert sorted(k[1] for k in repo.rows) == ["email", "webhook"]
    await worker.run_due()
    assert len(sent) == 1  # the email went out while the webhook's receiver is down
    assert repo.rows[("r1", "webhook", "physician")].status == "pending"
    assert repo.rows[("r1", "webhook", "physician")].error == "ConnectError"


def test_a_case_chooses_among_its_hospital_channels_and_cannot_add_one() -> None:
    from secondread_notify.channels import EmailChannel, WebhookChannel
    from secondread_notify.service import case_channels

    hospital = [EmailChannel(), WebhookChannel(url="https://h.example/x", secret="s")]  # type: ignore[arg-type]
    assert [c.kind for c in case_channels(hospital, {})] == ["email", "webhook"]
    chosen = case_channels(hospital, {"delivery_channels": ["webhook", "dicom"]})
    assert [c.kind for c in chosen] == ["webhook"]  # dicom is not the hospital's


async def test_how_much_of_the_patient_an_email_body_names_is_configured() -> None:
    from secondread_notify.channels import EmailChannel

    for setting, expected, absent in (
        ("none", "", "(patient"),
        ("name", "(patient Alonso Quixote)", "A. Q."),
        ("initials", "(patient A. Q.)", "Quixote"),
    ):
        repo = FakeRepo()
        channel = EmailChannel(patient_in_body=setting)  # type: ignore[arg-type]
        settings = NotifySettings(delivery_channels={"h1": [channel]})
        deps, sent, worker = make(repo, settings=settings)
        await queue_deliveries(signed(), deps)
        await worker.run_due()
        body = sent[0].get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert expected in text and absent not in text, setting
