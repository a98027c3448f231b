"""notify settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

from pydantic import SecretStr

from secondread_shared.settings import CommonSettings


class NotifySettings(CommonSettings):
    service_name: str = "notify"
    http_port: int = 8005
    db_user: str = "notify"
    db_password: SecretStr = SecretStr("notify-local")

    mail_from: str = "secondread <no-reply@secondread.invalid>"
    smtp_timeout_s: float = 15.0
    smtp_starttls: bool = False
    delivery_attempts: int = 4
    delivery_backoff_s: float = 1.0
