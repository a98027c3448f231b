"""ingest settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from secondread_shared.settings import PagesSettings


class PacsConfig(BaseModel):
    """A hospital PACS that ingest may query (C-FIND) and retrieve from (C-MOVE) for priors."""

    model_config = ConfigDict(frozen=True)

    ae_title: str
    host: str
    port: int = Field(gt=0, lt=65536)


class HospitalConfig(BaseModel):
    """What ingest knows of one hospital: its DICOM peers and its completion rules.

    ``ae_titles`` is the allow-list of calling AE titles whose C-STORE associations are accepted
    for this hospital; an unknown title is rejected at association (PS3.8 A-ASSOCIATE-RJ,
    reason 3, "calling-AE-title-not-recognized").
    """

    model_config = ConfigDict(frozen=True)

    ae_titles: list[str] = Field(default_factory=list)
    pacs: PacsConfig | None = None
    quiet_period_s: float = Field(default=10.0, gt=0)
    """A DIMSE/STOW study is complete after this long without a new instance."""
    intake_hold_s: float = Field(default=3600.0, gt=0)
    """A study with no intake is parked after this long (the intake may still arrive)."""
    prior_lookback_days: int = Field(default=5 * 365, ge=1)


def _demo_hospitals() -> dict[str, HospitalConfig]:
    # The local demo hospital (README): AE DEMO_PACS, its PACS is the second Orthanc; the
    # completion windows are short so tests and the demo do not wait.
    return {
        "demo": HospitalConfig(
            ae_titles=["DEMO_PACS"],
            pacs=PacsConfig(ae_title="DEMO_PACS", host="127.0.0.1", port=4243),
            quiet_period_s=2.0,
            intake_hold_s=15.0,
        )
    }


class IngestSettings(PagesSettings):
    service_name: str = "ingest"
    http_port: int = 8001
    db_user: str = "ingest"
    db_password: SecretStr = SecretStr("ingest-local")

    # API key -> hospital id. The local default defines the demo hospital (see README).
    api_keys: dict[str, str] = {"demo-hospital-key": "demo"}
    hospitals: dict[str, HospitalConfig] = Field(default_factory=_demo_hospitals)
    max_upload_bytes: int = 2 * 1024**3
    max_instance_bytes: int = 1024**3
    max_zip_members: int = 20_000
    max_zip_ratio: float = 200.0
    outbox_poll_s: float = 0.5

    # DIMSE Storage SCP (ARCHITECTURE.md: DICOM 11112, AE SECONDREAD).
    dicom_enabled: bool = True
    dicom_host: str = "127.0.0.1"
    dicom_port: int = 11112
    dicom_aet: str = "SECONDREAD"
    dicom_max_pdu: int = 0
    """Maximum PDU length we receive; 0 means unlimited (fewer, larger PDUs: faster)."""
    dicom_timeout_s: float = 60.0
    dicom_durability: Literal["spool", "store"] = "spool"
    """When a C-STORE is answered: after the fsynced spool write (``spool``), or after the
    object store and PostgreSQL hold the instance (``store``). See docs/ingest.md."""

    spool_dir: Path | None = None
    """The C-STORE write-ahead spool; ``<stack_dir>/ingest/spool`` when unset."""
    upload_workers: int = Field(default=6, ge=1, le=64)
    """Writes to the object store in flight during one upload (memory holds that many objects)."""
    spool_workers: int = 6
    """Parallel uploads from the spool to the object store."""
    spool_yield_s: float = 0.3
    """Spool workers wait until no C-STORE came for this long (receiving comes first)..."""
    spool_high_water: int = 5000
    """...unless the spool holds this many entries."""
    spool_stall_after: int = Field(default=8, ge=1)
    """Failed attempts after which a spooled instance stops holding its hospital's other cases
    back (it is still retried, every 60 s at most, and its case amended once it is stored)."""
    replica_id: str = Field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    """This replica's name in the shared spool backlog (``SECONDREAD_REPLICA_ID``)."""
    backlog_live_s: float = 30.0
    """A replica's reported spool backlog counts for this long (a dead replica's spool stops
    holding cases back after it; its instances amend their cases when it is back)."""
    priors_lease_s: float = 600.0
    """How long one replica owns a case's prior fetch before another may take it over."""
    completion_poll_s: float = 0.5

    # The upload portal at /portal/ (docs/web.md).
    portal_link_key: SecretStr | None = None
    """HMAC key of upload links (or ``portal_link_key_file``); generated locally if unset."""
    portal_link_key_file: Path | None = None
    portal_public_url: str = "http://127.0.0.1:8001/portal/"
    """Where upload links point (the portal as patients reach it)."""
    portal_poll_s: float = 0.5

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or (self.stack_dir / "ingest" / "spool")

    def hospital_for_aet(self, aet: str) -> str | None:
        """The hospital whose allow-list holds calling AE title ``aet``, if any."""
        for hospital_id, cfg in self.hospitals.items():
            if aet in cfg.ae_titles:
                return hospital_id
        return None

    def hospital(self, hospital_id: str) -> HospitalConfig:
        """A hospital's config; a hospital known only by API key gets the defaults."""
        return self.hospitals.get(hospital_id) or HospitalConfig()
