"""The FHIR channel: the DiagnosticReport and the delivery copy as a Binary, in one transaction
Bundle POSTed to the hospital's FHIR base URL with its bearer token (FHIR R4 3.1.0.11).

The subject is the patient as the hospital knows them (its identifier system and the patient
id), not the archive's pseudonym. The DiagnosticReport is created conditionally
(``ifNoneExist`` on its secondread identifier), so a resend of the same report version creates
nothing new; the Binary has a fullUrl derived from the report id.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Literal

import httpx
from pydantic import BaseModel, HttpUrl, SecretStr

from secondread_notify.channels.base import Message, Outcome, SendFailed

REPORT_IDENTIFIER_SYSTEM = "urn:secondread:report"


class FhirChannel(BaseModel):
    """Deliver to a FHIR server: ``base_url`` (ending before ``/DiagnosticReport``)."""

    kind: Literal["fhir"] = "fhir"
    base_url: HttpUrl
    token: SecretStr
    patient_identifier_system: str
    """The hospital's identifier system of its patient ids (an MRN system URI)."""
    timeout_s: float = 30.0


def transaction(message: Message, patient_system: str) -> dict[str, Any]:
    """The transaction Bundle for one delivery."""
    if message.identity is None or message.fhir is None:
        raise SendFailed("no identity or DiagnosticReport for the FHIR channel", permanent=True)
    report_id = message.event.report_id
    binary_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'secondread:{report_id}:pdf')}"
    resource = json.loads(message.fhir)
    resource.pop("id", None)
    resource["subject"] = {
        "identifier": {"system": patient_system, "value": message.identity.patient_id}
    }
    pdf = message.delivery_pdf or message.pdf
    entries: list[dict[str, Any]] = []
    if pdf is not None:
        resource["presentedForm"] = [
            {
                "contentType": "application/pdf",
                "url": binary_url,
                "title": "Second-opinion radiology report (delivery copy)",
            }
        ]
        entries.append(
            {
                "fullUrl": binary_url,
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/pdf",
                    "data": base64.b64encode(pdf).decode(),
                },
                "request": {"method": "POST", "url": "Binary"},
            }
        )
    entries.append(
        {
            "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'secondread:{report_id}')}",
            "resource": resource,
            "request": {
                "method": "POST",
                "url": "DiagnosticReport",
                "ifNoneExist": f"identifier={REPORT_IDENTIFIER_SYSTEM}|{report_id}",
            },
        }
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


class FhirSender:
    def __init__(self, channel: FhirChannel, client: httpx.AsyncClient | None = None) -> None:
        self.channel = channel
        self.client = client

    async def send(self, message: Message) -> Outcome:
        bundle = transaction(message, self.channel.patient_identifier_system)
        headers = {
            "Content-Type": "application/fhir+json",
            "Accept": "application/fhir+json",
            "Authorization": f"Bearer {self.channel.token.get_secret_value()}",
            "Idempotency-Key": message.idempotency_key,
        }
        client = self.client or httpx.AsyncClient(timeout=self.channel.timeout_s)
        try:
            resp = await client.post(
                str(self.channel.base_url).rstrip("/"), json=bundle, headers=headers
            )
        except httpx.HTTPError as exc:
            raise SendFailed(type(exc).__name__) from exc
        finally:
            if self.client is None:
                await client.aclose()
        if resp.is_success:
            return Outcome(detail=f"HTTP {resp.status_code}")
        permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 429)
        raise SendFailed(f"HTTP {resp.status_code}", permanent=permanent)
