"""The five services, each as N replicas (``secondread up --replicas N``).

Each runs ``<repo>/.venv/bin/python -m secondread_<name>`` from the repository root. Replica 1 of
service ``S`` is the component ``S`` on the service's port (``SERVICE_PORTS``); replica k >= 2 is
``S-k``. Its HTTP port is ten more per replica (ingest-2 8011, deidentify-2 8012, ..., notify-2
8015), except that a block of ten holding another component's port is skipped (the 8020s hold
Mailpit's 8025, the 8040s the Orthancs' 8042 and 8043: replica 3 is on the 8030s, replica 4 on
the 8050s). Ingest replica k also has its own Storage SCP port (``dicom_port`` + k - 1: 11112,
11113, ...) and its own spool (``<stack>/S-k/spool``); every replica shares the stack folder (the
services' keys live there) and the database.

Each replica is told who it is through its settings' environment variables:
``SECONDREAD_HTTP_PORT``, ``SECONDREAD_REPLICA_ID`` (the component name), and for ingest
``SECONDREAD_DICOM_PORT`` and ``SECONDREAD_SPOOL_DIR``.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from secondread_cli.stack.component import Component, Context
from secondread_cli.stack.defaults import INGEST, env_name
from secondread_cli.stack.paths import HOST, data_dir, venv_python
from secondread_cli.stack.probes import http_ok
from secondread_ingest.settings import IngestSettings
from secondread_shared.settings import SERVICE_PORTS, SERVICES, CommonSettings

NAMES: tuple[str, ...] = SERVICES
REPLICATED = True

INGEST_DICOM_PORT = INGEST.dicom_port
INGEST_AET = INGEST.dicom_aet
PORT_STEP = 10


def replica_name(service: str, replica: int) -> str:
    """``S`` for replica 1, ``S-k`` for replica k."""
    return service if replica == 1 else f"{service}-{replica}"


def port_offsets(replicas: int, taken: Collection[int]) -> list[int]:
    """The HTTP port offset of replicas 1..``replicas``: 0, then the next block of ten in which
    no service port would meet a port in ``taken``."""
    offsets = [0]
    block = 0
    while len(offsets) < replicas:
        block += PORT_STEP
        if not any(port + block in taken for port in SERVICE_PORTS.values()):
            offsets.append(block)
    return offsets


def spool_dir(name: str, stack: Path) -> Path:
    """Where ingest replica ``name`` spools C-STOREd instances (its own, never shared)."""
    return data_dir(name, stack) / "spool"


def service_env(
    service: str, name: str, stack: Path, http_port: int, dicom_port: int | None
) -> dict[str, str]:
    """The environment that makes a process replica ``name`` of ``service``."""
    env = {
        "SECONDREAD_STACK_DIR": str(stack),
        env_name(CommonSettings, "http_port"): str(http_port),
        env_name(IngestSettings, "replica_id"): name,
    }
    if dicom_port is not None:
        env[env_name(IngestSettings, "dicom_port")] = str(dicom_port)
        env[env_name(IngestSettings, "spool_dir")] = str(spool_dir(name, stack))
    return env


def service_component(service: str, replica: int, http_port: int) -> Component:
    name = replica_name(service, replica)
    module = f"secondread_{service}"
    dicom_port = INGEST_DICOM_PORT + replica - 1 if service == "ingest" else None
    ports = (http_port,) if dicom_port is None else (http_port, dicom_port)
    return Component(
        name=name,
        ports=ports,
        url=f"http://{HOST}:{http_port}",
        marker=module,
        command=lambda _stack: [venv_python(), "-m", module],
        health=lambda: http_ok(f"http://{HOST}:{http_port}/ready"),
        prepare=lambda stack: data_dir(name, stack).mkdir(parents=True, exist_ok=True),
        env=lambda stack: service_env(service, name, stack, http_port, dicom_port),
        grace=20.0,
        in_repo=True,
        replica=replica,
    )


def components(ctx: Context) -> list[Component]:
    offsets = port_offsets(ctx.replicas, ctx.taken)
    return [
        service_component(service, k, SERVICE_PORTS[service] + offsets[k - 1])
        for service in SERVICES
        for k in range(1, ctx.replicas + 1)
    ]
