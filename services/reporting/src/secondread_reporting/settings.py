"""reporting settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, model_validator

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
    viewer_base_url: str = "http://127.0.0.1:8004/viewer/"
    """Where readers reach the viewer (OHIF, served by reporting): the case view's links."""
    viewer_dist_dir: Path = Path("web/node_modules/@ohif/app/dist")
    """OHIF's built dist/, installed from the npm lock by ``make up``."""
    archive_dicomweb_url: str = ""
    """The archive's DICOMweb root behind ``/dicom-web/`` (default: ``orthanc_url``/dicom-web)."""
    # The reading workspace (/read/): the OIDC public client its pages sign in with
    # (authorization code + PKCE), and where the npm lock's packages are installed.
    web_client_id: str = "secondread-web"
    web_packages_dir: Path = Path("web/node_modules")

    @model_validator(mode="after")
    def _no_local_identity_provider_elsewhere(self) -> ReportingSettings:
        """The local Keycloak (and its demo users) is for the ``local`` environment only."""
        local = ("://127.0.0.1", "://localhost", "://[::1]")
        if self.environment != "local" and any(h in self.oidc_issuer for h in local):
            raise ValueError(
                f"SECONDREAD_OIDC_ISSUER is the local demo provider ({self.oidc_issuer}) in the "
                f"{self.environment!r} environment: point it at your OpenID Connect provider"
            )
        return self
