"""The local stack: start, stop and inspect every component as a plain local process.

Used by ``secondread up|down|status`` and by tests. Each component runs detached (its own session),
with

- a pid file ``<stack>/run/<name>.pid``,
- a log ``<stack>/logs/<name>.log`` (stdout and stderr),
- its data under ``<stack>/<name>/``.

``<stack>`` is ``$SECONDREAD_STACK_DIR`` or ``<repo>/.stack``; downloaded and built tools come from
``$SECONDREAD_CACHE_DIR`` or ``~/.cache/secondread`` (filled by ``deploy/local/install.sh``).

``up`` is idempotent: a running, healthy component is left alone, a stale pid file is removed, and a
port held by a process that is not ours is reported instead of starting a second copy. ``down``
stops components in reverse order (SIGTERM, then SIGKILL after a grace period) and keeps all data.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secondread_cli import keycloak
from secondread_shared.settings import BUCKETS_CLEAR, BUCKETS_PHI, SERVICE_PORTS

# --------------------------------------------------------------------------------------------
# Fixed addresses and pinned versions
# --------------------------------------------------------------------------------------------

HOST = "127.0.0.1"
KAFKA_VERSION = "4.3.1"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
ORTHANC_BIN = Path("/usr/sbin/Orthanc")
ORTHANC_PLUGIN_DIR = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN = ORTHANC_PLUGIN_DIR / "libOrthancDicomWeb.so"

PG_PORT = 55432
PG_SUPERUSER = "postgres"
PG_DATABASE = "secondread"
KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
S3_PORT = 9000
S3_ACCESS_KEY = "secondread"
S3_SECRET_KEY = "secondread-local-secret"  # noqa: S105 (local dev credential)
JAEGER_QUERY_PORT = 16686
JAEGER_OTLP_GRPC_PORT = 4317
JAEGER_OTLP_HTTP_PORT = 4318
SMTP_PORT = 2525
MAILPIT_HTTP_PORT = 8025
INGEST_DICOM_PORT = 11112
INGEST_AET = "SECONDREAD"


@dataclass(frozen=True)
class OrthancSpec:
    """One Orthanc instance: its name, ports, AE title and the peers it knows."""

    name: str
    title: str
    http_port: int
    dicom_port: int
    aet: str
    modalities: Mapping[str, tuple[str, str, int]]


ORTHANC_ARCHIVE = OrthancSpec(
    name="orthanc",
    title="secondread-archive",
    http_port=8042,
    dicom_port=4242,
    aet="SECONDREAD_ARCH",
    modalities={
        "pacs": ("DEMO_PACS", HOST, 4243),
        "secondread": (INGEST_AET, HOST, INGEST_DICOM_PORT),
    },
)
ORTHANC_PACS = OrthancSpec(
    name="orthanc-pacs",
    title="demo-hospital-pacs",
    http_port=8043,
    dicom_port=4243,
    aet="DEMO_PACS",
    modalities={
        "secondread": (INGEST_AET, HOST, INGEST_DICOM_PORT),
        "archive": ("SECONDREAD_ARCH", HOST, 4242),
    },
)

INFRA: tuple[str, ...] = (
    "postgres",
    "kafka",
    "s3",
    "orthanc",
    "orthanc-pacs",
    "jaeger",
    "mailpit",
    "keycloak",
)
SERVICES: tuple[str, ...] = tuple(SERVICE_PORTS)
ALL_COMPONENTS: tuple[str, ...] = INFRA + SERVICES
"""Every component, in start order (``down`` uses the reverse)."""


class StackError(RuntimeError):
    """A component could not be started or stopped; the message names it and its log."""

    def __init__(self, message: str, *, component: str | None = None, log: Path | None = None):
        super().__init__(message)
        self.component = component
        self.log = log
        self.progress = ""
        """What was printed while starting it, when it started in a worker thread."""


class UnknownComponentError(StackError, ValueError):
    """A component name that is not in ``ALL_COMPONENTS``."""


@dataclass(frozen=True)
class ComponentStatus:
    """What ``status()`` reports for one component."""

    name: str
    pid: int | None
    healthy: bool
    url: str
    ports: tuple[int, ...]
    log: Path
    note: str = ""

    @property
    def port(self) -> int:
        return self.ports[0]


# --------------------------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------------------------


def repo_root() -> Path:
    """The repository root (this file is ``<repo>/cli/src/secondread_cli/stack.py``)."""
    return Path(__file__).resolve().parents[3]


def stack_dir() -> Path:
    """Runtime data: ``$SECONDREAD_STACK_DIR`` or ``<repo>/.stack`` (absolute)."""
    env = os.environ.get("SECONDREAD_STACK_DIR")
    path = Path(env).expanduser() if env else repo_root() / ".stack"
    return path.absolute()


def cache_dir() -> Path:
    """Downloads and builds: ``$SECONDREAD_CACHE_DIR`` or ``~/.cache/secondread`` (absolute)."""
    env = os.environ.get("SECONDREAD_CACHE_DIR")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "secondread"
    return path.absolute()


def pid_file(name: str, stack: Path | None = None) -> Path:
    return (stack or stack_dir()) / "run" / f"{name}.pid"


def log_file(name: str, stack: Path | None = None) -> Path:
    return (stack or stack_dir()) / "logs" / f"{name}.log"


def data_dir(name: str, stack: Path | None = None) -> Path:
    return (stack or stack_dir()) / name


# --------------------------------------------------------------------------------------------
# Pid files and processes (pure or nearly so; unit-tested)
# --------------------------------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    """The pid in ``path``, or None if the file is missing, empty or not a positive integer."""
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        pid = int(text.split()[0]) if text else 0
    except ValueError:
        return None
    return pid if pid > 0 else None


def write_pid(path: Path, pid: int) -> None:
    """Write ``pid`` to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid}\n")
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the parenthesised command name, which may itself contain ')'.
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else ""
    return state not in ("Z", "X")


def pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def cmdline_matches(cmdline: Sequence[str], marker: str) -> bool:
    """Whether a process command line has an argument containing ``marker``."""
    return any(marker in arg for arg in cmdline)


def live_pid(name: str, marker: str, stack: Path | None = None) -> int | None:
    """The pid of our running ``name``, or None. A stale pid file is removed."""
    path = pid_file(name, stack)
    pid = read_pid(path)
    if pid is None:
        if path.exists():
            path.unlink(missing_ok=True)
        return None
    if pid_alive(pid) and cmdline_matches(pid_cmdline(pid), marker):
        return pid
    path.unlink(missing_ok=True)  # stale: the process is gone or the pid was reused
    return None


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """Best-effort description of the process listening on ``port`` (via ``ss``)."""
    if shutil.which("ss") is None:
        return "unknown process"
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown process"
    if "users:" in out:
        return out[out.index("users:") :].splitlines()[0]
    return "unknown process"


def owner_pid(description: str) -> int | None:
    """The first pid in an ``ss`` users description (``users:(("x",pid=12,fd=3))``)."""
    match = re.search(r"pid=(\d+)", description)
    return int(match.group(1)) if match else None


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ('' if missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# Config rendering (pure; unit-tested)
# --------------------------------------------------------------------------------------------


def new_kafka_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes as unpadded base64url (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


def render_kafka_properties(log_dir: Path, *, node_id: int = 1, partitions: int = 3) -> str:
    """server.properties of a one-node combined KRaft broker and controller on 127.0.0.1."""
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.bootstrap.servers": f"{HOST}:{KAFKA_CONTROLLER_PORT}",
        "listeners": f"PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}",
        "advertised.listeners": (
            f"PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}"
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        "log.retention.hours": "168",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    lines = ["# Generated by secondread_cli.stack; edits are overwritten on `secondread up`."]
    lines += [f"{k}={v}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


def render_pg_hba(
    roles: Iterable[str], *, superuser: str = PG_SUPERUSER, database: str = PG_DATABASE
) -> str:
    """pg_hba.conf: socket trust for the superuser only; scram-sha-256 on 127.0.0.1 for roles."""
    role_list = ",".join(roles)
    return (
        "# Generated by secondread_cli.stack; edits are overwritten on `secondread up`.\n"
        "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
        f"local   all   {superuser}   trust\n"
        f"host    {database}   {role_list}   127.0.0.1/32   scram-sha-256\n"
    )


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def service_db_password(role: str) -> str:
    """The local password of a service role (``<name>-local``)."""
    return f"{role}-local"


def render_pg_bootstrap(roles: Iterable[str], *, database: str = PG_DATABASE) -> str:
    """Idempotent SQL run inside ``database``: one LOGIN role and one owned schema per service."""
    out = [
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
        f"REVOKE ALL ON DATABASE {_sql_ident(database)} FROM PUBLIC;",
    ]
    for role in roles:
        ident, lit = _sql_ident(role), _sql_literal(role)
        pw = _sql_literal(service_db_password(role))
        out += [
            "DO $$ BEGIN",
            f"  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {lit}) THEN",
            f"    CREATE ROLE {ident} LOGIN PASSWORD {pw};",
            "  END IF;",
            "END $$;",
            f"ALTER ROLE {ident} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {pw};",
            f"GRANT CONNECT, TEMPORARY ON DATABASE {_sql_ident(database)} TO {ident};",
            f"CREATE SCHEMA IF NOT EXISTS {ident} AUTHORIZATION {ident};",
            f"ALTER SCHEMA {ident} OWNER TO {ident};",
            f"ALTER ROLE {ident} IN DATABASE {_sql_ident(database)} SET search_path = {ident};",
        ]
    return "\n".join(out) + "\n"


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


# --------------------------------------------------------------------------------------------
# Health probes
# --------------------------------------------------------------------------------------------


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether GET ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (local http only)
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def smtp_ok(port: int, host: str = HOST, timeout: float = 2.0) -> bool:
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            code, _ = smtp.noop()
            return code == 250
    except (OSError, smtplib.SMTPException):
        return False


def _run(
    cmd: Sequence[str],
    *,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(cmd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(env) if env is not None else None,
        input=input_text,
    )
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, list(cmd), proc.stdout, proc.stderr)
    return proc


def _run_logged(
    cmd: Sequence[str], *, stack: Path, component: str, what: str, timeout: float
) -> None:
    """Run a one-off preparation step, appending its output to the component's log."""
    log = log_file(component, stack)
    proc = _run(cmd, timeout=timeout, check=False)
    with open(log, "a") as fh:
        fh.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise StackError(f"{what} failed; see {log}", component=component, log=log)


# --------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------


@dataclass
class Component:
    """How to prepare, run, probe and bootstrap one component."""

    name: str
    ports: tuple[int, ...]
    url: str
    marker: str  # a string found in the process's command line, to recognise our process
    command: Callable[[Path], list[str]]
    health: Callable[[], bool]
    prepare: Callable[[Path], None] = lambda _stack: None
    bootstrap: Callable[[Path], list[str]] = lambda _stack: []  # returns notes to print
    env: Callable[[Path], dict[str, str]] = field(default=lambda _stack: {})
    run_as: str | None = None  # a system user to drop to when running as root
    stop_signal: int = signal.SIGTERM
    grace: float = 15.0
    startup_timeout: float | None = None  # overrides up()'s timeout when longer
    in_repo: bool = False  # run from the repo root (services read repo-relative paths)


def _is_root() -> bool:
    return os.geteuid() == 0


# ---- postgres --------------------------------------------------------------------------------


def _pg_paths(stack: Path) -> tuple[Path, Path, Path]:
    root = data_dir("postgres", stack)
    return root, root / "data", root / "socket"


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_SUPERUSER, "--", *cmd] if _is_root() else cmd


def _pg_prepare(stack: Path) -> None:
    root, data, sock = _pg_paths(stack)
    if not (PG_BIN / "postgres").exists():
        raise StackError(
            f"PostgreSQL 15 not found in {PG_BIN}: run deploy/local/install.sh",
            component="postgres",
        )
    if len(str(sock / f".s.PGSQL.{PG_PORT}")) > 100:
        raise StackError(
            f"stack dir path too long for a unix socket ({sock}); "
            "set SECONDREAD_STACK_DIR to a shorter path",
            component="postgres",
        )
    root.mkdir(parents=True, exist_ok=True)
    sock.mkdir(parents=True, exist_ok=True)
    if _is_root():
        try:
            pw = pwd.getpwnam(PG_SUPERUSER)
        except KeyError as exc:
            raise StackError(
                "running as root needs the 'postgres' system user (installed with postgresql-15)",
                component="postgres",
            ) from exc
        for path in (root, sock):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        if data.exists():
            os.chown(data, pw.pw_uid, pw.pw_gid)
        probe = _run(["runuser", "-u", PG_SUPERUSER, "--", "test", "-w", str(root)], check=False)
        if probe.returncode != 0:
            raise StackError(
                f"the postgres user cannot reach {root} (a parent directory is not "
                "traversable); set SECONDREAD_STACK_DIR elsewhere",
                component="postgres",
            )
    if not (data / "PG_VERSION").exists():
        _run_logged(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    PG_SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ]
            ),
            stack=stack,
            component="postgres",
            what="initdb",
            timeout=180,
        )
    hba = data / "pg_hba.conf"
    hba.write_text(render_pg_hba(SERVICES))
    if _is_root():
        pw = pwd.getpwnam(PG_SUPERUSER)
        os.chown(hba, pw.pw_uid, pw.pw_gid)


def _pg_command(stack: Path) -> list[str]:
    _, data, sock = _pg_paths(stack)
    return [
        str(PG_BIN / "postgres"),
        "-D",
        str(data),
        "-c",
        f"listen_addresses={HOST}",
        "-c",
        f"port={PG_PORT}",
        "-c",
        f"unix_socket_directories={sock}",
        "-c",
        "password_encryption=scram-sha-256",
        "-c",
        "max_connections=200",
        "-c",
        "shared_buffers=128MB",
        "-c",
        "fsync=on",
        "-c",
        "logging_collector=off",
    ]


def _pg_superuser_args(sock: Path, database: str) -> list[str]:
    """libpq client flags: the superuser, over the stack's unix socket, on ``database``."""
    return ["-h", str(sock), "-p", str(PG_PORT), "-U", PG_SUPERUSER, "-d", database]


def _pg_health() -> bool:
    _, _, sock = _pg_paths(stack_dir())
    try:
        proc = _run(
            [
                str(PG_BIN / "pg_isready"),
                "-q",
                *_pg_superuser_args(sock, "postgres"),
                "-t",
                "2",
            ],
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def psql_superuser(sql: str, *, database: str = "postgres", stack: Path | None = None) -> str:
    """Run ``sql`` as the superuser over the stack's unix socket; return stdout."""
    _, _, sock = _pg_paths(stack or stack_dir())
    proc = _run(
        [
            str(PG_BIN / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            *_pg_superuser_args(sock, database),
        ],
        input_text=sql,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"psql failed: {proc.stderr.strip()}", component="postgres")
    return proc.stdout


def _pg_bootstrap(stack: Path) -> list[str]:
    notes: list[str] = []
    exists = psql_superuser(
        f"SELECT 1 FROM pg_database WHERE datname = {_sql_literal(PG_DATABASE)};",  # noqa: S608
        stack=stack,
    )
    if not exists.strip():
        psql_superuser(f"CREATE DATABASE {_sql_ident(PG_DATABASE)};", stack=stack)
        notes.append(f"created database {PG_DATABASE}")
    psql_superuser(render_pg_bootstrap(SERVICES), database=PG_DATABASE, stack=stack)
    return notes


# ---- kafka -----------------------------------------------------------------------------------


def kafka_libs() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"


def _kafka_log4j() -> Path:
    return repo_root() / "deploy" / "local" / "kafka" / "log4j2.properties"


def _java_cmd(main: str, *args: str, heap: bool = False) -> list[str]:
    java = shutil.which("java") or "java"
    cmd = [java]
    if heap:
        cmd += [
            "-Xms512m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
        ]
    # Without this, log4j2 stops at the JVM shutdown hook and the broker's shutdown is not logged.
    cmd += ["-Dlog4j2.shutdownHookEnabled=false"]
    cmd += [f"-Dlog4j2.configurationFile={_kafka_log4j()}", "-cp", f"{kafka_libs()}/*", main, *args]
    return cmd


def _kafka_prepare(stack: Path) -> None:
    libs = kafka_libs()
    if not (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        raise StackError(
            f"Kafka jars not found in {libs}: run deploy/local/install.sh", component="kafka"
        )
    root = data_dir("kafka", stack)
    logs = root / "data"
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "server.properties"
    cfg.write_text(render_kafka_properties(logs))
    id_file = root / "cluster.id"
    if not id_file.exists():
        id_file.write_text(new_kafka_cluster_id() + "\n")
    cluster_id = id_file.read_text().strip()
    if not (logs / "meta.properties").exists():
        _run_logged(
            _java_cmd(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(cfg),
            ),
            stack=stack,
            component="kafka",
            what="kafka storage format",
            timeout=120,
        )


def _kafka_command(stack: Path) -> list[str]:
    return _java_cmd("kafka.Kafka", str(data_dir("kafka", stack) / "server.properties"), heap=True)


def _kafka_health() -> bool:
    if shutil.which("kcat") is None:
        return port_open(KAFKA_PORT)
    try:
        proc = _run(
            ["kcat", "-b", f"{HOST}:{KAFKA_PORT}", "-L", "-m", "3"], timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


async def _ensure_topics_async(bootstrap: str) -> list[str]:
    from aiokafka.admin import (
        AIOKafkaAdminClient,
        NewTopic,
    )

    from secondread_shared.topics import topic_specs

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="secondread-stack")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in topic_specs() if s.name not in existing]
        if missing:
            resp = await admin.create_topics(
                [
                    NewTopic(
                        name=s.name,
                        num_partitions=s.partitions,
                        replication_factor=1,
                        topic_configs=dict(s.configs),
                    )
                    for s in missing
                ],
                timeout_ms=30000,
            )
            # 36 = TOPIC_ALREADY_EXISTS (another `up` raced us): fine.
            errors = [
                (t[0], t[1]) for t in getattr(resp, "topic_errors", []) if t[1] not in (0, 36)
            ]
            if errors:
                raise StackError(f"creating topics failed: {errors}", component="kafka")
        return [s.name for s in missing]
    finally:
        await admin.close()


def ensure_topics(bootstrap: str = f"{HOST}:{KAFKA_PORT}") -> list[str]:
    """Create the platform's topics that are missing; return the names created."""
    return asyncio.run(_ensure_topics_async(bootstrap))


def _kafka_bootstrap(_stack: Path) -> list[str]:
    created = ensure_topics()
    return [f"created {len(created)} topic(s)"] if created else []


# ---- s3 --------------------------------------------------------------------------------------


def supports_user_xattrs(directory: Path) -> bool:
    """Whether files in ``directory`` can carry ``user.*`` extended attributes."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f".xattr-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        os.setxattr(probe, "user.secondread.probe", b"1")
        return os.getxattr(probe, "user.secondread.probe") == b"1"
    except (OSError, AttributeError):
        return False
    finally:
        probe.unlink(missing_ok=True)


def versitygw_command(binary: Path, data: Path, *, sidecar: Path | None) -> list[str]:
    cmd = [str(binary), "--port", f"{HOST}:{S3_PORT}", "--health", "/health", "posix"]
    if sidecar is not None:
        cmd += ["--sidecar", str(sidecar)]
    return [*cmd, str(data)]


def _s3_paths(stack: Path) -> tuple[Path, Path]:
    root = data_dir("s3", stack)
    return root / "data", root / "meta"


def _s3_prepare(stack: Path) -> None:
    binary = cache_dir() / "bin" / "versitygw"
    if not binary.exists():
        raise StackError(f"{binary} not found: run deploy/local/install.sh", component="s3")
    data, meta = _s3_paths(stack)
    data.mkdir(parents=True, exist_ok=True)
    # Decide once and remember: switching metadata modes later would orphan existing metadata.
    mode_file = data.parent / "metadata-mode"
    if not mode_file.exists():
        mode_file.write_text("xattr\n" if supports_user_xattrs(data.parent) else "sidecar\n")
    if mode_file.read_text().strip() == "sidecar":
        meta.mkdir(parents=True, exist_ok=True)


def _s3_command(stack: Path) -> list[str]:
    data, meta = _s3_paths(stack)
    mode_file = data.parent / "metadata-mode"
    sidecar = meta if mode_file.exists() and mode_file.read_text().strip() == "sidecar" else None
    return versitygw_command(cache_dir() / "bin" / "versitygw", data, sidecar=sidecar)


def _s3_env(_stack: Path) -> dict[str, str]:
    return {"ROOT_ACCESS_KEY": S3_ACCESS_KEY, "ROOT_SECRET_KEY": S3_SECRET_KEY}


def _s3_bootstrap(_stack: Path) -> list[str]:
    from minio import Minio

    client = Minio(
        endpoint=f"{HOST}:{S3_PORT}",
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        secure=False,
        region="us-east-1",
    )
    created = []
    for bucket in (*BUCKETS_PHI, *BUCKETS_CLEAR):
        if not client.bucket_exists(bucket_name=bucket):
            client.make_bucket(bucket_name=bucket)
            created.append(bucket)
    return [f"created bucket(s) {', '.join(created)}"] if created else []


# ---- orthanc ---------------------------------------------------------------------------------


def _orthanc_plugins() -> list[Path]:
    return [DICOMWEB_PLUGIN] if DICOMWEB_PLUGIN.exists() else []


def _orthanc_config_path(spec: OrthancSpec, stack: Path) -> Path:
    return data_dir(spec.name, stack) / "orthanc.json"


def _orthanc_component(spec: OrthancSpec) -> Component:
    def prepare(stack: Path) -> None:
        if not ORTHANC_BIN.exists():
            raise StackError(
                f"{ORTHANC_BIN} not found: run deploy/local/install.sh", component=spec.name
            )
        root = data_dir(spec.name, stack)
        for sub in ("storage", "index"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        _orthanc_config_path(spec, stack).write_text(
            render_orthanc_config(spec, root, plugins=_orthanc_plugins())
        )

    return Component(
        name=spec.name,
        ports=(spec.http_port, spec.dicom_port),
        url=f"http://{HOST}:{spec.http_port}",
        marker=str(_orthanc_config_path(spec, stack_dir())),
        command=lambda stack: [str(ORTHANC_BIN), str(_orthanc_config_path(spec, stack))],
        health=lambda: http_ok(f"http://{HOST}:{spec.http_port}/system"),
        prepare=prepare,
        grace=15.0,
    )


# ---- jaeger ----------------------------------------------------------------------------------


def _jaeger_prepare(stack: Path) -> None:
    binary = cache_dir() / "bin" / "jaeger"
    if not binary.exists():
        raise StackError(f"{binary} not found: run deploy/local/install.sh", component="jaeger")
    data_dir("jaeger", stack).mkdir(parents=True, exist_ok=True)


def jaeger_config() -> Path:
    """Our all-in-one config (the built-in one binds the query API to every interface)."""
    return repo_root() / "deploy" / "local" / "jaeger" / "config.yaml"


def _jaeger_command(_stack: Path) -> list[str]:
    return [str(cache_dir() / "bin" / "jaeger"), "--config", f"file:{jaeger_config()}"]


# ---- mailpit (SMTP 2525, web UI and API 8025) ----------------------------------------------


def _venv_python() -> str:
    candidate = repo_root() / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def _mailpit_command(stack: Path) -> list[str]:
    return [
        str(cache_dir() / "bin" / "mailpit"),
        "--smtp",
        f"{HOST}:{SMTP_PORT}",
        "--listen",
        f"{HOST}:{MAILPIT_HTTP_PORT}",
        "--database",
        str(data_dir("mailpit", stack) / "mailpit.db"),
        "--max",
        "5000",
        "--disable-version-check",
        "--smtp-disable-rdns",
    ]


# ---- keycloak (the OIDC provider; see keycloak.py) -------------------------------------------


def _keycloak_prepare(stack: Path) -> None:
    try:
        keycloak.prepare(cache_dir(), repo_root(), data_dir("keycloak", stack))
    except FileNotFoundError as exc:
        raise StackError(str(exc), component="keycloak") from exc


def _keycloak_component() -> Component:
    return Component(
        name="keycloak",
        ports=(keycloak.HTTP_PORT, keycloak.MANAGEMENT_PORT),
        url=keycloak.issuer(HOST),
        marker=str(data_dir("keycloak", stack_dir()) / "h2"),
        command=lambda stack: keycloak.command(cache_dir(), data_dir("keycloak", stack), HOST),
        health=lambda: http_ok(f"http://{HOST}:{keycloak.MANAGEMENT_PORT}/health/ready"),
        prepare=_keycloak_prepare,
        env=lambda _stack: keycloak.env(cache_dir()),
        grace=30.0,
        startup_timeout=240.0,
    )


# ---- services --------------------------------------------------------------------------------


def _service_component(name: str, port: int) -> Component:
    module = f"secondread_{name}"
    ports = (port, INGEST_DICOM_PORT) if name == "ingest" else (port,)
    return Component(
        name=name,
        ports=ports,
        url=f"http://{HOST}:{port}",
        marker=module,
        command=lambda _stack: [_venv_python(), "-m", module],
        health=lambda: http_ok(f"http://{HOST}:{port}/ready"),
        prepare=lambda stack: data_dir(name, stack).mkdir(parents=True, exist_ok=True),
        env=lambda stack: {"SECONDREAD_STACK_DIR": str(stack)},
        grace=20.0,
        in_repo=True,
    )


def component_table() -> dict[str, Component]:
    """Every component by name, in start order."""
    stack = stack_dir()
    table: list[Component] = [
        Component(
            name="postgres",
            ports=(PG_PORT,),
            url=f"postgresql://{HOST}:{PG_PORT}/{PG_DATABASE}",
            marker=str(_pg_paths(stack)[1]),
            command=_pg_command,
            health=_pg_health,
            prepare=_pg_prepare,
            bootstrap=_pg_bootstrap,
            run_as=PG_SUPERUSER,
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for clients
            grace=30.0,
        ),
        Component(
            name="kafka",
            ports=(KAFKA_PORT, KAFKA_CONTROLLER_PORT),
            url=f"kafka://{HOST}:{KAFKA_PORT}",
            marker="kafka.Kafka",
            command=_kafka_command,
            health=_kafka_health,
            prepare=_kafka_prepare,
            bootstrap=_kafka_bootstrap,
            grace=30.0,
        ),
        Component(
            name="s3",
            ports=(S3_PORT,),
            url=f"http://{HOST}:{S3_PORT}",
            marker="versitygw",
            command=_s3_command,
            health=lambda: http_ok(f"http://{HOST}:{S3_PORT}/health"),
            prepare=_s3_prepare,
            bootstrap=_s3_bootstrap,
            env=_s3_env,
        ),
        _orthanc_component(ORTHANC_ARCHIVE),
        _orthanc_component(ORTHANC_PACS),
        Component(
            name="jaeger",
            ports=(JAEGER_QUERY_PORT, JAEGER_OTLP_GRPC_PORT, JAEGER_OTLP_HTTP_PORT),
            url=f"http://{HOST}:{JAEGER_QUERY_PORT}",
            marker=str(cache_dir() / "bin" / "jaeger"),
            command=_jaeger_command,
            health=lambda: http_ok(f"http://{HOST}:{JAEGER_QUERY_PORT}/api/services"),
            prepare=_jaeger_prepare,
        ),
        Component(
            name="mailpit",
            ports=(SMTP_PORT, MAILPIT_HTTP_PORT),
            url=f"http://{HOST}:{MAILPIT_HTTP_PORT}",
            marker=str(cache_dir() / "bin" / "mailpit"),
            command=_mailpit_command,
            health=lambda: (
                smtp_ok(SMTP_PORT) and http_ok(f"http://{HOST}:{MAILPIT_HTTP_PORT}/api/v1/info")
            ),
            prepare=lambda stack: data_dir("mailpit", stack).mkdir(parents=True, exist_ok=True),
        ),
        _keycloak_component(),
    ]
    table += [_service_component(name, port) for name, port in SERVICE_PORTS.items()]
    return {c.name: c for c in table}


def select(names: Iterable[str] | None) -> list[str]:
    """Validate component names and return them in start order (all when ``names`` is None)."""
    if names is None:
        return list(ALL_COMPONENTS)
    wanted = list(names)
    unknown = [n for n in wanted if n not in ALL_COMPONENTS]
    if unknown:
        raise UnknownComponentError(
            f"unknown component(s) {', '.join(unknown)}; known: {', '.join(ALL_COMPONENTS)}"
        )
    return [n for n in ALL_COMPONENTS if n in wanted]


# --------------------------------------------------------------------------------------------
# up / down / status
# --------------------------------------------------------------------------------------------


def _is_healthy(comp: Component) -> bool:
    """The component's health check, skipped (False) when its main port is closed."""
    return port_open(comp.ports[0]) and comp.health()


_OUT = threading.local()
"""Per-thread progress buffer: services start concurrently and print whole lines when done."""


def _say(message: str, *, end: str = "\n") -> None:
    buf: list[str] | None = getattr(_OUT, "buf", None)
    if buf is not None:
        buf.append(message + end)
    else:
        print(message, end=end, flush=True)


def _start_buffered(comp: Component, stack: Path, timeout: float) -> str:
    """:func:`_start_one` in a worker thread; returns its progress text."""
    _OUT.buf = []
    try:
        _start_one(comp, stack, timeout)
    except StackError as exc:
        exc.progress = "".join(_OUT.buf)
        raise
    finally:
        text = "".join(_OUT.buf)
        _OUT.buf = None
    return text


def _start_concurrently(comps: list[Component], stack: Path, timeout: float) -> None:
    """Start independent components (the services) at once; report each as it comes up."""
    errors: list[StackError] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(comps)) as pool:
        futures = [pool.submit(_start_buffered, c, stack, timeout) for c in comps]
        for fut in concurrent.futures.as_completed(futures):
            try:
                print(fut.result(), end="", flush=True)
            except StackError as exc:
                print(exc.progress, end="", flush=True)
                errors.append(exc)
    if errors:
        raise errors[0]


def _fail(comp: Component, stack: Path, reason: str) -> StackError:
    log = log_file(comp.name, stack)
    last = tail(log, 20)
    _say("FAILED")
    if last:
        print(f"--- last lines of {log} ---\n{last}\n---", file=sys.stderr, flush=True)
    return StackError(f"{comp.name}: {reason}; see {log}", component=comp.name, log=log)


def _spawn(comp: Component, stack: Path) -> subprocess.Popen[bytes]:
    log = log_file(comp.name, stack)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = comp.command(stack)
    env = {**os.environ, **comp.env(stack)}
    kwargs: dict[str, Any] = {}
    cwd = repo_root() if comp.in_repo else data_dir(comp.name, stack)
    cwd.mkdir(parents=True, exist_ok=True)
    if comp.run_as and _is_root():
        pw = pwd.getpwnam(comp.run_as)
        kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        env.update(HOME=pw.pw_dir, USER=comp.run_as, LOGNAME=comp.run_as)
    with open(log, "ab") as fh:
        fh.write(
            f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting: {' '.join(cmd)}\n".encode()
        )
        fh.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
            **kwargs,
        )
    write_pid(pid_file(comp.name, stack), proc.pid)
    return proc


def _bootstrap(comp: Component, stack: Path) -> str:
    """Run the component's bootstrap; return its notes as a suffix for the progress line."""
    try:
        notes = comp.bootstrap(stack)
    except StackError:
        raise
    except Exception as exc:  # any client error while bootstrapping names the component
        _say("FAILED")
        raise StackError(
            f"{comp.name}: bootstrap failed: {type(exc).__name__}: {exc}",
            component=comp.name,
            log=log_file(comp.name, stack),
        ) from exc
    return f" [{'; '.join(notes)}]" if notes else ""


def _start_one(comp: Component, stack: Path, timeout: float) -> None:
    t0 = time.monotonic()
    pid = live_pid(comp.name, comp.marker, stack)
    if pid is not None:
        if _is_healthy(comp):
            extra = _bootstrap(comp, stack)
            _say(f"{comp.name} already running (pid {pid}){extra}")
            return
        # Ours but not (yet) healthy, e.g. still starting from an earlier `up`: wait for it.
        _say(f"waiting for {comp.name} (pid {pid}) ... ", end="")
        _wait_healthy(comp, stack, None, pid, timeout, t0)
        extra = _bootstrap(comp, stack)
        _say(f"ok ({time.monotonic() - t0:.1f}s){extra}")
        return
    busy = [p for p in comp.ports if port_open(p)]
    if busy:
        owners = {p: port_owner(p) for p in busy}
        who = "; ".join(f"port {p}: {o}" for p, o in owners.items())
        opid = owner_pid(owners[busy[0]])
        if opid is not None and cmdline_matches(pid_cmdline(opid), comp.marker):
            raise StackError(
                f"{comp.name}: a copy of this stack's {comp.name} is already running as pid "
                f"{opid}, but its pid file is missing ({who}). Stop it with `kill {opid}` "
                f"(or write {opid} into {pid_file(comp.name, stack)}) and retry.",
                component=comp.name,
            )
        raise StackError(
            f"{comp.name}: port(s) {', '.join(map(str, busy))} already in use by a process this "
            f"stack did not start ({who}). Stop that process (it may be an orphan of an earlier "
            f"run, or a stack with another SECONDREAD_STACK_DIR) and retry.",
            component=comp.name,
        )
    _say(f"starting {comp.name} ... ", end="")
    try:
        comp.prepare(stack)
    except StackError:
        _say("FAILED")
        raise
    proc = _spawn(comp, stack)
    try:
        _wait_healthy(comp, stack, proc, proc.pid, timeout, t0)
        extra = _bootstrap(comp, stack)
    except StackError:
        _stop_pid(comp, proc.pid, stack, quiet=True)
        raise
    except BaseException:  # e.g. Ctrl-C while waiting: do not leave a half-started process
        _stop_pid(comp, proc.pid, stack, quiet=True)
        raise
    _say(f"ok ({time.monotonic() - t0:.1f}s){extra}")


def _wait_healthy(
    comp: Component,
    stack: Path,
    proc: subprocess.Popen[bytes] | None,
    pid: int,
    timeout: float,
    t0: float,
) -> None:
    limit = max(timeout, comp.startup_timeout or 0.0)
    delay = 0.1
    while True:
        if proc is not None and proc.poll() is not None:
            pid_file(comp.name, stack).unlink(missing_ok=True)
            raise _fail(comp, stack, f"exited with status {proc.returncode} during startup")
        if proc is None and not pid_alive(pid):
            pid_file(comp.name, stack).unlink(missing_ok=True)
            raise _fail(comp, stack, "process exited during startup")
        if _is_healthy(comp):
            return
        if time.monotonic() - t0 > limit:
            raise _fail(comp, stack, f"not healthy within {limit:g}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


@contextlib.contextmanager
def _exclusive(stack: Path) -> Iterator[None]:
    """Serialise ``up``/``down`` of one stack dir (two concurrent ``up`` would race on ports)."""
    lock = stack / "run" / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for another `up`/`down` on {stack} ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def up(components: list[str] | None = None, *, timeout: float = 120) -> None:
    """Start the given components (all by default) in order; wait for each to be healthy.

    Raises StackError naming the component and its log file when one fails.
    """
    names = select(components)
    stack = stack_dir()
    for sub in ("run", "logs"):
        (stack / sub).mkdir(parents=True, exist_ok=True)
    table = component_table()
    with _exclusive(stack):
        for name in names:
            if name not in SERVICES:
                _start_one(table[name], stack, timeout)
        # The services depend on the infrastructure only, not on each other.
        services = [table[n] for n in names if n in SERVICES]
        if services:
            _say(f"starting {', '.join(c.name for c in services)} ...")
            _start_concurrently(services, stack, timeout)


def _stop_pid(comp: Component, pid: int, stack: Path, *, quiet: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, comp.stop_signal)
    deadline = time.monotonic() + comp.grace
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        if not quiet:
            _say(f"(no exit after {comp.grace:.0f}s, SIGKILL) ", end="")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            if not pid_alive(pid):
                break
            time.sleep(0.1)
    # Reap if it is our child (only when stopped within the same process that started it).
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    pid_file(comp.name, stack).unlink(missing_ok=True)


def down(components: list[str] | None = None) -> None:
    """Stop the given components (all by default) in reverse start order; data is kept.

    A port held by a process this stack did not start is reported and left alone.
    """
    names = select(components)
    stack = stack_dir()
    table = component_table()
    with _exclusive(stack):
        for name in reversed(names):
            comp = table[name]
            pid = live_pid(name, comp.marker, stack)
            if pid is None:
                busy = [p for p in comp.ports if port_open(p)]
                if busy:
                    _say(
                        f"{name}: not started by this stack, left alone (port(s) "
                        f"{', '.join(map(str, busy))} held by {port_owner(busy[0])})"
                    )
                continue
            t0 = time.monotonic()
            _say(f"stopping {name} (pid {pid}) ... ", end="")
            _stop_pid(comp, pid, stack)
            _say(f"ok ({time.monotonic() - t0:.1f}s)")


def status(components: list[str] | None = None) -> list[ComponentStatus]:
    """The state of each component (all by default)."""
    stack = stack_dir()
    table = component_table()
    out: list[ComponentStatus] = []
    for name in select(components):
        comp = table[name]
        pid = live_pid(name, comp.marker, stack)
        ok = _is_healthy(comp)
        note = ""
        if pid is None:
            busy = [p for p in comp.ports if port_open(p)]
            note = (
                f"port {busy[0]} held by a process not started by this stack" if busy else "stopped"
            )
        elif not ok:
            note = "running but not healthy"
        out.append(
            ComponentStatus(
                name=name,
                pid=pid,
                healthy=ok,
                url=comp.url,
                ports=comp.ports,
                log=log_file(name, stack),
                note=note,
            )
        )
    return out


def healthy(components: list[str] | None = None) -> bool:
    """Whether every given component (all by default) is running from this stack and healthy."""
    return all(s.healthy and s.pid is not None for s in status(components))


def reset_data(components: list[str] | None = None) -> None:
    """Delete the data of stopped components (never of running ones)."""
    stack = stack_dir()
    table = component_table()
    for name in select(components):
        if live_pid(name, table[name].marker, stack) is not None:
            raise StackError(f"{name} is running; run down first", component=name)
        target = data_dir(name, stack)
        if target.exists():
            shutil.rmtree(target)
