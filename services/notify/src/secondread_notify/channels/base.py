"""What every channel's sender takes and gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from secondread_notify.identity import PatientIdentity
from secondread_shared.events import ReportSigned


@dataclass(frozen=True)
class Message:
    """One delivery to send: the signed report's bytes and metadata, and the recipient."""

    event: ReportSigned
    canonical: bytes
    """The signed canonical form (JSON), exactly as signed."""
    report: dict[str, Any]
    pdf: bytes | None
    fhir: bytes | None
    idempotency_key: str
    role: str
    recipient_name: str
    recipient_address: str
    identity: PatientIdentity | None = None
    """The restored identity (audited read), for the channels that deliver it."""
    delivery_pdf: bytes | None = None
    """The delivery copy: the cover page with the identity, then the signed PDF unchanged."""
    evidence: bytes | None = None
    """One of the case's original instances (PHI zone): the SR's evidence in the hospital study."""
    verify_url: str = ""
    """Where anyone can verify the report's signature."""


@dataclass(frozen=True)
class Outcome:
    """What the receiving side answered (for the delivery record, never PHI)."""

    detail: str = ""


class SendFailed(Exception):
    """A send that did not succeed. ``permanent``: the receiver refused the message for good
    (a retry would be refused too), so the delivery fails without further attempts."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Sender(Protocol):
    async def send(self, message: Message) -> Outcome: ...
