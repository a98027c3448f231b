"""reporting settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from secondread_shared.settings import CommonSettings


class ReportingSettings(CommonSettings):
    service_name: str = "reporting"
    http_port: int = 8004
    db_user: str = "reporting"
    db_password: SecretStr = SecretStr("reporting-local")

    # Bearer token -> radiologist id. The local defaults are demo tokens (see README).
    radiologist_tokens: dict[str, str] = {
        "demo-token-rad-chen": "rad-chen",
        "demo-token-rad-okafor": "rad-okafor",
        "demo-token-rad-silva": "rad-silva",
        "demo-token-rad-novak": "rad-novak",
    }
    # Encrypts the radiologists' private signing keys at rest.
    signing_master_key: SecretStr | None = None
    signing_master_key_file: Path | None = None
    viewer_base_url: str = "http://127.0.0.1:8042/ui/app/#/"
