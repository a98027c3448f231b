"""The local stack: start, stop and inspect every component as a plain local process.

Used by ``secondread up|down|status|logs`` and by tests. Each component runs detached (its own
session), with

- a pid file ``<stack>/run/<name>.pid``,
- a log ``<stack>/logs/<name>.log`` (stdout and stderr),
- its data under ``<stack>/<name>/``.

``<stack>`` is ``$SECONDREAD_STACK_DIR`` or ``<repo>/.stack``; downloaded and built tools come from
``$SECONDREAD_CACHE_DIR`` or ``~/.cache/secondread`` (filled by ``deploy/local/install.sh``).

``up`` is idempotent: a running, healthy component is left alone, a stale pid file is removed, and a
port held by a process that is not ours is reported instead of starting a second copy. ``down``
stops components in reverse order (SIGTERM, then SIGKILL after a grace period) and keeps all data.
The services can run as N replicas each (``up(replicas=N)``; see ``components/services.py``).

The package:

- ``paths``, ``defaults``: where things live; addresses and credentials from the settings' defaults;
- ``processes``, ``probes``, ``supervisor``: pid files and ports, health checks, spawning, waiting,
  stopping with a grace period, the ``up``/``down`` lock;
- ``components/``: one module per component (``components/__init__.py`` lists them in order);
- ``registry``: the component table, replica names, the remembered replica count;
- ``manager``: ``up``, ``down``, ``status``, ``healthy``, ``log_paths``, ``reset_data``.

Everything a caller used from the former ``stack.py`` module is importable from here.
"""

from __future__ import annotations

from typing import Any

from secondread_cli.stack.component import Component, ComponentModule, ComponentStatus, Context
from secondread_cli.stack.components.jaeger import jaeger_config, jaeger_ports
from secondread_cli.stack.components.kafka import (
    KAFKA_CONTROLLER_PORT,
    KAFKA_PORT,
    KAFKA_VERSION,
    ensure_topics,
    kafka_libs,
    new_kafka_cluster_id,
    render_kafka_properties,
)
from secondread_cli.stack.components.mailpit import MAILPIT_HTTP_PORT, SMTP_PORT
from secondread_cli.stack.components.orthanc import (
    DICOMWEB_PLUGIN,
    ORTHANC_ARCHIVE,
    ORTHANC_BIN,
    ORTHANC_PACS,
    ORTHANC_PLUGIN_DIR,
    OrthancSpec,
    render_orthanc_config,
)
from secondread_cli.stack.components.postgres import (
    PG_BIN,
    PG_DATABASE,
    PG_PORT,
    PG_SUPERUSER,
    psql_superuser,
    render_pg_bootstrap,
    render_pg_hba,
)
from secondread_cli.stack.components.postgres import sql_ident as _sql_ident
from secondread_cli.stack.components.postgres import sql_literal as _sql_literal
from secondread_cli.stack.components.s3 import (
    S3_ACCESS_KEY,
    S3_PORT,
    S3_SECRET_KEY,
    supports_user_xattrs,
    versitygw_command,
)
from secondread_cli.stack.components.services import (
    INGEST_AET,
    INGEST_DICOM_PORT,
    port_offsets,
    replica_name,
    spool_dir,
)
from secondread_cli.stack.errors import StackError, UnknownComponentError
from secondread_cli.stack.manager import (
    component_table,
    down,
    healthy,
    log_paths,
    replicas,
    reset_data,
    select,
    status,
    up,
)
from secondread_cli.stack.paths import (
    HOST,
    cache_dir,
    data_dir,
    log_file,
    pid_file,
    replicas_file,
    repo_root,
    stack_dir,
)
from secondread_cli.stack.probes import http_ok, smtp_ok
from secondread_cli.stack.processes import (
    cmdline_matches,
    live_pid,
    owner_pid,
    pid_alive,
    pid_cmdline,
    port_open,
    port_owner,
    read_pid,
    tail,
    write_pid,
)
from secondread_cli.stack.registry import MAX_REPLICAS, REGISTRY, Registry
from secondread_shared.settings import SERVICES

INFRA: tuple[str, ...] = tuple(n for n in REGISTRY.names if n not in REGISTRY.replicated)
ALL_COMPONENTS: tuple[str, ...] = REGISTRY.names
"""Every component with one replica each, in start order (``down`` uses the reverse)."""

_JAEGER_PORTS = {
    "JAEGER_QUERY_PORT": "query",
    "JAEGER_OTLP_GRPC_PORT": "otlp_grpc",
    "JAEGER_OTLP_HTTP_PORT": "otlp_http",
}


def __getattr__(name: str) -> Any:
    """Jaeger's ports, read from its config file on first use (no I/O at import)."""
    if name in _JAEGER_PORTS:
        return getattr(jaeger_ports(), _JAEGER_PORTS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALL_COMPONENTS",
    "DICOMWEB_PLUGIN",
    "HOST",
    "INFRA",
    "INGEST_AET",
    "INGEST_DICOM_PORT",
    "KAFKA_CONTROLLER_PORT",
    "KAFKA_PORT",
    "KAFKA_VERSION",
    "MAILPIT_HTTP_PORT",
    "MAX_REPLICAS",
    "ORTHANC_ARCHIVE",
    "ORTHANC_BIN",
    "ORTHANC_PACS",
    "ORTHANC_PLUGIN_DIR",
    "PG_BIN",
    "PG_DATABASE",
    "PG_PORT",
    "PG_SUPERUSER",
    "REGISTRY",
    "S3_ACCESS_KEY",
    "S3_PORT",
    "S3_SECRET_KEY",
    "SERVICES",
    "SMTP_PORT",
    "Component",
    "ComponentModule",
    "ComponentStatus",
    "Context",
    "OrthancSpec",
    "Registry",
    "StackError",
    "UnknownComponentError",
    "_sql_ident",
    "_sql_literal",
    "cache_dir",
    "cmdline_matches",
    "component_table",
    "data_dir",
    "down",
    "ensure_topics",
    "healthy",
    "http_ok",
    "jaeger_config",
    "jaeger_ports",
    "kafka_libs",
    "live_pid",
    "log_file",
    "log_paths",
    "new_kafka_cluster_id",
    "owner_pid",
    "pid_alive",
    "pid_cmdline",
    "pid_file",
    "port_offsets",
    "port_open",
    "port_owner",
    "psql_superuser",
    "read_pid",
    "render_kafka_properties",
    "render_orthanc_config",
    "render_pg_bootstrap",
    "render_pg_hba",
    "replica_name",
    "replicas",
    "replicas_file",
    "repo_root",
    "reset_data",
    "select",
    "smtp_ok",
    "spool_dir",
    "stack_dir",
    "status",
    "supports_user_xattrs",
    "tail",
    "up",
    "versitygw_command",
    "write_pid",
]
