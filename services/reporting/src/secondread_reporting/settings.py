"""reporting settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from secondread_shared.settings import PagesSettings


class ReportingSettings(PagesSettings):
    service_name: str = "reporting"
    http_port: int = 8004
    db_user: str = "reporting"
    db_password: SecretStr = SecretStr("reporting-local")

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
