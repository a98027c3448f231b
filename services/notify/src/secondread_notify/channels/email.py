"""The email channel: SMTP, to the physician (and the patient where the intake asked)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Literal

from pydantic import BaseModel

from secondread_notify.channels.base import Message, Outcome, SendFailed
from secondread_notify.compose import compose_email


class EmailChannel(BaseModel):
    """Deliver by email over the notify service's SMTP settings, in ``language``."""

    kind: Literal["email"] = "email"
    language: Literal["en", "de"] = "en"
    patient_in_body: Literal["none", "initials", "name"] = "initials"
    """How much of the patient the email body names (the cover page always has it all)."""


class EmailSender:
    def __init__(
        self,
        send_mail: Callable[[EmailMessage], Awaitable[None]],
        mail_from: str,
        channel: EmailChannel | None = None,
    ) -> None:
        self.send_mail = send_mail
        self.mail_from = mail_from
        self.channel = channel or EmailChannel()

    async def send(self, message: Message) -> Outcome:
        email = compose_email(
            report=message.report,
            canonical=message.canonical,
            signature=message.event.signature,
            key_id=message.event.key_id,
            to_name=message.recipient_name,
            to_email=message.recipient_address,
            mail_from=self.mail_from,
            role=message.role,
            pdf=message.delivery_pdf or message.pdf,
            patient_initials=self._patient(message),
            language=self.channel.language,
            verify_url=message.verify_url,
        )
        try:
            await self.send_mail(email)
        except (OSError, TimeoutError) as exc:
            raise SendFailed(type(exc).__name__) from exc
        return Outcome(detail=str(email["Message-ID"]))

    def _patient(self, message: Message) -> str:
        identity = message.identity
        if identity is None or self.channel.patient_in_body == "none":
            return ""
        return identity.name if self.channel.patient_in_body == "name" else identity.initials
