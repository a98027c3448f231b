"""deidentify settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from secondread_shared.settings import CommonSettings


class DeidentifySettings(CommonSettings):
    service_name: str = "deidentify"
    http_port: int = 8002
    db_user: str = "deidentify"
    db_password: SecretStr = SecretStr("deidentify-local")

    # The pseudonym key: ``SECONDREAD_PSEUDONYM_KEY`` (hex or text), or a file holding it.
    # In the local environment a random key file is created under the stack folder on first start.
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None
    # Encrypts the identity vault (Fernet key, urlsafe base64); same rules as the pseudonym key.
    vault_key: SecretStr | None = None
    vault_key_file: Path | None = None
    # Instances of a case in flight at once (read, de-identified one at a time, written to the
    # archive and the clear bucket): memory holds at most this many instances, twice each.
    archive_workers: int = Field(default=4, ge=1, le=32)
