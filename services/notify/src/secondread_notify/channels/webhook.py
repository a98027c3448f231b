"""The webhook channel: a signed JSON POST to the hospital's endpoint.

The body holds the FHIR DiagnosticReport and the signed report. The header
``X-Secondread-Signature: t=<unix time>,v1=<hex HMAC-SHA256 over "t.body">`` is made with the
hospital's own secret; a receiver recomputes it, compares in constant time, and refuses a
timestamp more than five minutes away (:mod:`secondread_notify.receiver` is the reference).
``Idempotency-Key`` is the same on every attempt of one delivery, so a resend after a crash is
recognised by the receiver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Literal

import httpx
from pydantic import BaseModel, HttpUrl, SecretStr

from secondread_notify.channels.base import Message, Outcome, SendFailed

SIGNATURE_HEADER = "X-Secondread-Signature"
TOLERANCE_S = 300


class WebhookChannel(BaseModel):
    """Deliver by a signed POST to ``url`` (one secret per hospital)."""

    kind: Literal["webhook"] = "webhook"
    url: HttpUrl
    secret: SecretStr
    timeout_s: float = 15.0


def sign(body: bytes, secret: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def body(message: Message) -> bytes:
    """The POST body: the FHIR DiagnosticReport, the signed report and its signature."""
    return json.dumps(
        {
            "case_id": message.event.case_id,
            "report_id": message.event.report_id,
            "diagnostic_report": json.loads(message.fhir) if message.fhir else None,
            "signed_report": base64.b64encode(message.canonical).decode(),
            "signature": {
                "algorithm": message.event.algorithm,
                "key_id": message.event.key_id,
                "value": message.event.signature,
            },
        },
        separators=(",", ":"),
    ).encode()


class WebhookSender:
    def __init__(self, channel: WebhookChannel, client: httpx.AsyncClient | None = None) -> None:
        self.channel = channel
        self.client = client

    async def send(self, message: Message) -> Outcome:
        payload = body(message)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.idempotency_key,
            SIGNATURE_HEADER: sign(
                payload, self.channel.secret.get_secret_value().encode(), int(time.time())
            ),
        }
        client = self.client or httpx.AsyncClient(timeout=self.channel.timeout_s)
        try:
            resp = await client.post(str(self.channel.url), content=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise SendFailed(type(exc).__name__) from exc
        finally:
            if self.client is None:
                await client.aclose()
        if resp.is_success:
            return Outcome(detail=f"HTTP {resp.status_code}")
        # 408 and 429 and 5xx: the receiver may take it later; any other 4xx refuses it for good
        permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 429)
        raise SendFailed(f"HTTP {resp.status_code}", permanent=permanent)
