"""The webhook channel against the reference receiver, run as a real HTTP process: the signature
verifies, a resend of the same delivery is stored once, a replayed or stale request is refused,
and a refusal for good fails the delivery without retries."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from secondread_notify.channels.base import Message, SendFailed
from secondread_notify.channels.webhook import SIGNATURE_HEADER, WebhookChannel, WebhookSender, sign
from secondread_notify.receiver import Refused, verify
from secondread_shared.events import ObjectRef, ReportSigned
from tests.processes import free_port, serving

SECRET = b"hospital-webhook-secret"
CANONICAL = b'{"report_id":"r1","assessment":{"summary":"No change"}}'
FHIR = b'{"resourceType":"DiagnosticReport","status":"final"}'


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    (tmp_path / "secret").write_bytes(SECRET)
    folder = tmp_path / "received"
    command = [sys.executable, "-m", "secondread_notify.receiver", "--port", str(port),
               "--secret-file", str(tmp_path / "secret"), "--dir", str(folder)]  # fmt: skip
    url = f"http://127.0.0.1:{port}/hook"
    with serving(command, url):
        yield url, folder


def message(key: str = "r1.webhook.physician") -> Message:
    event = ReportSigned(
        case_id="c1",
        producer="reporting",
        report_id="r1",
        radiologist_id="rad",
        signed_at=datetime.now(UTC),
        key_id="k1",
        signature="c2ln",
        report=ObjectRef(bucket="b", key="k", sha256="0" * 64, size=len(CANONICAL)),
        assessment="No change",
    )
    return Message(
        event=event,
        canonical=CANONICAL,
        report=json.loads(CANONICAL),
        pdf=None,
        fhir=FHIR,
        idempotency_key=key,
        role="physician",
        recipient_name="Dr R",
        recipient_address="",
    )


def channel(url: str, secret: bytes = SECRET) -> WebhookChannel:
    return WebhookChannel(url=url, secret=secret.decode())  # type: ignore[arg-type]


async def test_a_delivery_verifies_and_a_resend_is_stored_once(
    receiver: tuple[str, Path],
) -> None:
    url, folder = receiver
    sender = WebhookSender(channel(url))
    await sender.send(message())
    await sender.send(message())  # a resend after a crash: same key, new signature
    [stored] = list(folder.glob("*.json"))
    assert stored.name == "r1.webhook.physician.json"
    body = json.loads(stored.read_bytes())
    assert body["diagnostic_report"]["resourceType"] == "DiagnosticReport"
    assert base64.b64decode(body["signed_report"]) == CANONICAL
    assert body["signature"] == {"algorithm": "Ed25519", "key_id": "k1", "value": "c2ln"}


async def test_replayed_stale_and_forged_requests_are_refused(receiver: tuple[str, Path]) -> None:
    url, folder = receiver
    payload = b'{"report_id":"r2"}'
    now = int(time.time())
    headers = {
        "Idempotency-Key": "r2.webhook.physician",
        SIGNATURE_HEADER: sign(payload, SECRET, now),
    }
    async with httpx.AsyncClient() as client:
        first = await client.post(url, content=payload, headers=headers)
        replayed = await client.post(
            url, content=payload, headers={**headers, "Idempotency-Key": "another-key"}
        )
        stale = await client.post(url, content=payload, headers={
            **headers, SIGNATURE_HEADER: sign(payload, SECRET, now - 301)})  # fmt: skip
        forged = await client.post(url, content=payload, headers={
            **headers, SIGNATURE_HEADER: sign(payload, b"another secret", now)})  # fmt: skip
        tampered = await client.post(url, content=payload + b" ", headers={
            **headers, SIGNATURE_HEADER: sign(payload, SECRET, now + 1)})  # fmt: skip
    assert first.status_code == 200
    assert replayed.status_code == 409
    assert stale.status_code == 401 and "5-minute" in stale.json()["message"]
    assert forged.status_code == 401 and tampered.status_code == 401
    assert len(list(folder.glob("*.json"))) == 1


async def test_a_wrong_secret_is_refused_for_good(receiver: tuple[str, Path]) -> None:
    url, _ = receiver
    with pytest.raises(SendFailed) as exc:
        await WebhookSender(channel(url, b"not the hospital's")).send(message("r3.webhook.x"))
    assert exc.value.permanent and exc.value.reason == "HTTP 401"


async def test_an_unreachable_receiver_is_retried() -> None:
    sender = WebhookSender(channel(f"http://127.0.0.1:{free_port()}/hook"))
    with pytest.raises(SendFailed) as exc:
        await sender.send(message())
    assert not exc.value.permanent and exc.value.reason == "ConnectError"


def test_verify_is_what_a_receiver_needs() -> None:
    payload = b"{}"
    header = sign(payload, SECRET, 1_700_000_000)
    assert verify(header, payload, SECRET, now=1_700_000_100) == 1_700_000_000
    for bad in ("", "t=1", "v1=00", "t=x,v1=00"):
        with pytest.raises(Refused):
            verify(bad, payload, SECRET, now=1_700_000_000)


def test_the_example_in_the_docs_verifies_what_notify_signs() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "notify.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(code, namespace)  # our own documentation
    check = namespace["verify"]
    assert callable(check)
    payload = b'{"report_id":"r9"}'
    check(sign(payload, SECRET, int(time.time())), payload, SECRET)
    with pytest.raises(PermissionError):
        check(sign(payload, SECRET, int(time.time()) - 400), payload, SECRET)
    with pytest.raises(PermissionError):
        check(sign(payload, b"other", int(time.time())), payload, SECRET)
