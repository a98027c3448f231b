"""routing settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from secondread_shared.settings import CommonSettings


class RoutingSettings(CommonSettings):
    service_name: str = "routing"
    http_port: int = 8003
    db_user: str = "routing"
    db_password: SecretStr = SecretStr("routing-local")

    roster_path: Path = Path("deploy/roster.toml")
    routine_due_hours: int = 72
    urgent_due_hours: int = 24
