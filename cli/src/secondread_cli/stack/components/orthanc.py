"""The two Orthanc instances: the reading archive and the demo hospital's PACS.

Their HTTP addresses are ``CommonSettings.orthanc_url`` and ``pacs_url``; the PACS's AE title and
DICOM port are the demo hospital's PACS in ingest's settings; both know ingest's Storage SCP (AE
``IngestSettings.dicom_aet`` on ``dicom_port``) as ``secondread``. A C-MOVE to ``secondread`` goes
to replica 1's port, as a PACS outside knows one address for an AE title.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secondread_cli.stack.component import Component, Context
from secondread_cli.stack.defaults import COMMON, INGEST, address_port, demo_pacs
from secondread_cli.stack.errors import StackError
from secondread_cli.stack.paths import HOST, data_dir, stack_dir
from secondread_cli.stack.probes import http_ok

NAMES: tuple[str, ...] = ("orthanc", "orthanc-pacs")
REPLICATED = False

ORTHANC_BIN = Path("/usr/sbin/Orthanc")
ORTHANC_PLUGIN_DIR = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN = ORTHANC_PLUGIN_DIR / "libOrthancDicomWeb.so"

ARCHIVE_AET = "SECONDREAD_ARCH"
ARCHIVE_DICOM_PORT = 4242
INGEST_AET = INGEST.dicom_aet
INGEST_DICOM_PORT = INGEST.dicom_port


@dataclass(frozen=True)
class OrthancSpec:
    """One Orthanc instance: its name, ports, AE title and the peers it knows."""

    name: str
    title: str
    http_port: int
    dicom_port: int
    aet: str
    modalities: Mapping[str, tuple[str, str, int]]


_PACS = demo_pacs()

ORTHANC_ARCHIVE = OrthancSpec(
    name="orthanc",
    title="secondread-archive",
    http_port=address_port(COMMON.orthanc_url),
    dicom_port=ARCHIVE_DICOM_PORT,
    aet=ARCHIVE_AET,
    modalities={
        "pacs": (_PACS.ae_title, _PACS.host, _PACS.port),
        "secondread": (INGEST_AET, HOST, INGEST_DICOM_PORT),
    },
)
ORTHANC_PACS = OrthancSpec(
    name="orthanc-pacs",
    title="demo-hospital-pacs",
    http_port=address_port(COMMON.pacs_url),
    dicom_port=_PACS.port,
    aet=_PACS.ae_title,
    modalities={
        "secondread": (INGEST_AET, HOST, INGEST_DICOM_PORT),
        "archive": (ARCHIVE_AET, HOST, ARCHIVE_DICOM_PORT),
    },
)


def render_orthanc_config(spec: OrthancSpec, root: Path, *, plugins: Sequence[Path]) -> str:
    """Orthanc JSON configuration for one instance whose data lives under ``root``."""
    config: dict[str, Any] = {
        "Name": spec.title,
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "StorageCompression": False,
        "Plugins": [str(p) for p in plugins],
        "HttpServerEnabled": True,
        "HttpPort": spec.http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": spec.aet,
        "DicomPort": spec.dicom_port,
        "DicomCheckCalledAet": False,
        "DicomCheckModalityHost": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomModalities": {k: list(v) for k, v in spec.modalities.items()},
        "StableAge": 5,
        "SaveJobs": True,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
    }
    return json.dumps(config, indent=2) + "\n"


def _plugins() -> list[Path]:
    return [DICOMWEB_PLUGIN] if DICOMWEB_PLUGIN.exists() else []


def _config_path(spec: OrthancSpec, stack: Path) -> Path:
    return data_dir(spec.name, stack) / "orthanc.json"


def orthanc_component(spec: OrthancSpec, stack: Path | None = None) -> Component:
    def prepare(stack: Path) -> None:
        if not ORTHANC_BIN.exists():
            raise StackError(
                f"{ORTHANC_BIN} not found: run deploy/local/install.sh", component=spec.name
            )
        root = data_dir(spec.name, stack)
        for sub in ("storage", "index"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        _config_path(spec, stack).write_text(render_orthanc_config(spec, root, plugins=_plugins()))

    return Component(
        name=spec.name,
        ports=(spec.http_port, spec.dicom_port),
        url=f"http://{HOST}:{spec.http_port}",
        marker=str(_config_path(spec, stack or stack_dir())),
        command=lambda stack: [str(ORTHANC_BIN), str(_config_path(spec, stack))],
        health=lambda: http_ok(f"http://{HOST}:{spec.http_port}/system"),
        prepare=prepare,
        grace=15.0,
    )


def components(ctx: Context) -> list[Component]:
    return [
        orthanc_component(ORTHANC_ARCHIVE, ctx.stack),
        orthanc_component(ORTHANC_PACS, ctx.stack),
    ]
