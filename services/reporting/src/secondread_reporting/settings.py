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

    # The OpenID Connect provider whose access tokens the API accepts (Keycloak on the local
    # stack; any provider elsewhere). Its keys are found through discovery.
    oidc_issuer: str = "http://127.0.0.1:8180/realms/secondread"
    oidc_audience: str = "secondread-api"
    oidc_clock_skew_seconds: float = 10.0
    # Encrypts the radiologists' private signing keys at rest.
    signing_master_key: SecretStr | None = None
    signing_master_key_file: Path | None = None
    public_base_url: str = "http://127.0.0.1:8004"
    """Where the API is reached from outside: the verification URL printed on every PDF."""
    viewer_base_url: str = "http://127.0.0.1:8042/ui/app/#/"
