"""ingest settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

from pydantic import SecretStr

from secondread_shared.settings import CommonSettings


class IngestSettings(CommonSettings):
    service_name: str = "ingest"
    http_port: int = 8001
    db_user: str = "ingest"
    db_password: SecretStr = SecretStr("ingest-local")

    # API key -> hospital id. The local default defines the demo hospital (see README).
    api_keys: dict[str, str] = {"demo-hospital-key": "demo"}
    max_upload_bytes: int = 2 * 1024**3
    max_zip_members: int = 20_000
    max_zip_ratio: float = 200.0
    outbox_poll_s: float = 0.5
