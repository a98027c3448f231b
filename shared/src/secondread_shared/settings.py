"""Settings shared by every service, read from ``SECONDREAD_*`` environment variables.

Settings objects are built once in a service's composition root and passed in explicitly; nothing
reads the environment at import time. Defaults are the local stack started by ``make up``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Addresses of the shared infrastructure and the knobs every service has.

    Each field is read from ``SECONDREAD_<FIELD>`` (for example ``SECONDREAD_KAFKA_BOOTSTRAP``).
    """

    model_config = SettingsConfigDict(env_prefix="SECONDREAD_", extra="ignore")

    service_name: str = "secondread"
    environment: str = "local"
    stack_dir: Path = Path(".stack")
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8000

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_partitions: int = 3
    # Bounded in-process retries before a message goes to its dead-letter topic.
    max_attempts: int = 3
    retry_backoff_s: float = 0.5
    # A dependency that is down (storage, Orthanc, the database: a TransientError) is waited for
    # this long, past max_attempts, with backoff up to 15 s, before the message is dead-lettered.
    outage_budget_s: float = 120.0
    # Each attempt of a handler is cut off after this long (all attempts together stay within
    # the consumers' max_poll_interval of 15 minutes).
    handler_timeout_s: float = 240.0
    # On SIGTERM: unready at once, then in-flight requests and messages get this long to finish
    # (and their offsets to be committed) before the process exits. Kubernetes'
    # terminationGracePeriodSeconds and the local stack's stop grace are longer.
    shutdown_grace_s: float = 15.0

    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "secondread"
    s3_secret_key: SecretStr = SecretStr("secondread-local-secret")
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_timeout_s: float = 30.0
    bucket_raw: str = "secondread-phi-raw"
    bucket_quarantine: str = "secondread-phi-quarantine"
    bucket_clear: str = "secondread-clear"
    bucket_reports: str = "secondread-reports"

    orthanc_url: str = "http://127.0.0.1:8042"
    orthanc_user: str | None = None
    orthanc_password: SecretStr | None = None
    orthanc_timeout_s: float = 30.0
    pacs_url: str = "http://127.0.0.1:8043"

    db_host: str = "127.0.0.1"
    db_port: int = 55432
    db_name: str = "secondread"
    db_user: str = "secondread"
    db_password: SecretStr = SecretStr("secondread-local")

    otlp_endpoint: str = "http://127.0.0.1:4317"
    tracing_enabled: bool = True

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525

    @property
    def db_dsn(self) -> str:
        """libpq connection string for this service's own role (its schema is its search path)."""
        return (
            f"host={self.db_host} port={self.db_port} dbname={self.db_name} "
            f"user={self.db_user} password={self.db_password.get_secret_value()} "
            f"options=-csearch_path={self.db_user}"
        )


class PagesSettings(CommonSettings):
    """What a service with pages and a bearer-token API adds: its OpenID Connect provider (whose
    access tokens it accepts; Keycloak on the local stack, found through discovery), the public
    client its pages sign in with (authorization code + PKCE), and where the npm lock's packages
    are installed. The local demo provider is refused outside the ``local`` environment."""

    oidc_issuer: str = "http://127.0.0.1:8180/realms/secondread"
    oidc_audience: str = "secondread-api"
    oidc_clock_skew_seconds: float = 10.0
    web_client_id: str = "secondread-web"
    web_packages_dir: Path = Path("web/node_modules")
    """The pages' npm packages (keycloak-js, dcmjs, tus-js-client, OHIF), from ``make up``."""

    @model_validator(mode="after")
    def _no_local_identity_provider_elsewhere(self) -> PagesSettings:
        local = ("://127.0.0.1", "://localhost", "://[::1]")
        if self.environment != "local" and any(h in self.oidc_issuer for h in local):
            raise ValueError(
                f"SECONDREAD_OIDC_ISSUER is the local demo provider ({self.oidc_issuer}) in the "
                f"{self.environment!r} environment: point it at your OpenID Connect provider"
            )
        return self


SERVICE_PORTS: dict[str, int] = {
    "ingest": 8001,
    "deidentify": 8002,
    "routing": 8003,
    "reporting": 8004,
    "notify": 8005,
}
"""The fixed HTTP port of each service (ARCHITECTURE.md, "Real components")."""

SERVICES: tuple[str, ...] = tuple(SERVICE_PORTS)

BUCKETS_PHI = ("secondread-phi-raw", "secondread-phi-quarantine")
BUCKETS_CLEAR = ("secondread-clear", "secondread-reports")
