"""notify settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from secondread_notify.channels import Channel, DicomChannel, EmailChannel
from secondread_shared.settings import CommonSettings


def _local_channels() -> dict[str, list[Channel]]:
    """The local demo hospital: email, and the report back into its PACS (the second Orthanc)."""
    return {
        "demo": [
            EmailChannel(),
            DicomChannel(ae_title="DEMO_PACS", host="127.0.0.1", port=4243),
        ]
    }


class NotifySettings(CommonSettings):
    service_name: str = "notify"
    http_port: int = 8005
    db_user: str = "notify"
    db_password: SecretStr = SecretStr("notify-local")

    mail_from: str = "secondread <no-reply@secondread.invalid>"
    smtp_timeout_s: float = 15.0
    smtp_starttls: bool = False
    """Upgrade the SMTP connection with STARTTLS (required by most relays)."""
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    """SMTP AUTH credentials; both empty (the default) sends without authentication."""
    delivery_attempts: int = 10
    """Attempts of one delivery before it fails (``notification.failed``): with the default
    backoff, retries span about 17 minutes, so a mail relay or receiver down for minutes is
    ridden out."""
    delivery_backoff_s: float = 2.0
    """The first retry's delay; each further one doubles (with jitter), up to the cap."""
    delivery_backoff_max_s: float = 600.0
    delivery_lease_s: float = 120.0
    """How long a worker's claim on a delivery lasts; a claim left by a worker that died
    between send and mark is taken up again after it (one resend, same idempotency key)."""
    delivery_poll_s: float = 1.0
    contacts_wait_s: float = 3600.0
    """How long a signed report waits for its case's contacts (``case.received``, normally in
    long before) before it is parked and the case marked ``notification_failed``."""
    send_timeout_s: float = 30.0
    """The longest one send may take (any channel) before it counts as failed."""
    verify_url_base: str = "http://127.0.0.1:8004"
    """Where physicians verify a signature (reporting's public address), for the cover page."""
    delivery_channels: dict[str, list[Channel]] = Field(default_factory=_local_channels)
    """Channels by hospital id (``SECONDREAD_DELIVERY_CHANNELS``, JSON), e.g.
    ``{"demo": [{"kind": "email"}, {"kind": "webhook", "url": "...", "secret": "..."}]}``.
    A hospital not listed gets email only."""

    def channels(self, hospital_id: str) -> list[Channel]:
        """The hospital's delivery channels (email when none is configured)."""
        return self.delivery_channels.get(hospital_id) or [EmailChannel()]
