"""The addresses and credentials of the local stack, read from the settings' defaults.

The settings classes (``secondread_shared.settings`` and each service's own) declare where every
component is; their defaults describe the stack that ``make up`` starts. The stack manager reads
those defaults and declares no port or credential a second time. It reads the *defaults*, never
the environment: a process that points a service elsewhere (``SECONDREAD_KAFKA_BOOTSTRAP`` at a
proxy, say) must not move the broker that the stack starts.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from secondread_ingest.settings import IngestSettings, PacsConfig
from secondread_shared.settings import SERVICES, CommonSettings

COMMON = CommonSettings.model_construct()
"""The shared settings' defaults (``model_construct`` reads no environment variable)."""

INGEST = IngestSettings.model_construct()
"""ingest's defaults: its Storage SCP (port, AE title) and the demo hospital's PACS."""


def env_name(settings: type[CommonSettings], field: str) -> str:
    """The environment variable that sets ``field`` of ``settings`` (``SECONDREAD_<FIELD>``)."""
    if field not in settings.model_fields:
        raise KeyError(f"{settings.__name__} has no setting {field!r}")
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


def address_port(address: str) -> int:
    """The port of ``host:port`` or of a URL (``http://host:port/...``)."""
    if "://" in address:
        port = urlsplit(address).port
        if port is None:
            raise ValueError(f"{address}: no port")
        return port
    return int(address.rsplit(":", 1)[1])


def demo_pacs() -> PacsConfig:
    """The demo hospital's PACS as ingest knows it (AE title, host, DICOM port)."""
    pacs = INGEST.hospitals["demo"].pacs
    if pacs is None:
        raise LookupError("ingest's default demo hospital has no PACS")
    return pacs


def service_settings(name: str) -> CommonSettings:
    """Service ``name``'s settings defaults (``secondread_<name>.settings.<Name>Settings``).

    Imported when needed only: some pull in heavy modules (notify's channels load pydicom).
    """
    if name not in SERVICES:
        raise KeyError(f"no service {name!r}")
    module = importlib.import_module(f"secondread_{name}.settings")
    cls: type[CommonSettings] = getattr(module, f"{name.capitalize()}Settings")
    return cls.model_construct()


def service_roles() -> dict[str, str]:
    """Each service's PostgreSQL role and its local password, from the services' settings."""
    roles: dict[str, str] = {}
    for name in SERVICES:
        settings = service_settings(name)
        roles[settings.db_user] = settings.db_password.get_secret_value()
    return roles
