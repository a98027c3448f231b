"""Delivery channels: a discriminated union of their configurations, and a registry of senders
keyed by the union's literal (one module each)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from secondread_notify.channels.base import Message, Outcome, Sender, SendFailed
from secondread_notify.channels.dicom import DicomChannel, DicomSender
from secondread_notify.channels.email import EmailChannel, EmailSender
from secondread_notify.channels.fhir import FhirChannel, FhirSender
from secondread_notify.channels.webhook import WebhookChannel, WebhookSender

Channel = Annotated[
    EmailChannel | WebhookChannel | FhirChannel | DicomChannel, Field(discriminator="kind")
]
"""One channel of a hospital's delivery configuration."""

__all__ = [
    "Channel",
    "DicomChannel",
    "DicomSender",
    "EmailChannel",
    "EmailSender",
    "FhirChannel",
    "FhirSender",
    "Message",
    "Outcome",
    "SendFailed",
    "Sender",
    "WebhookChannel",
    "WebhookSender",
]
