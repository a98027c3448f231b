"""Unit tests of the stack manager's pure parts: paths, pid files, config rendering.

No server is started here; the real stack is exercised by the integration and e2e suites.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secondread_cli import stack
from secondread_shared.settings import SERVICE_PORTS

# ---- locations ---------------------------------------------------------------------------------


def test_stack_and_cache_dirs_follow_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECONDREAD_STACK_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("SECONDREAD_CACHE_DIR", str(tmp_path / "c"))
    assert stack.stack_dir() == tmp_path / "s"
    assert stack.cache_dir() == tmp_path / "c"
    assert stack.pid_file("kafka") == tmp_path / "s" / "run" / "kafka.pid"
    assert stack.log_file("kafka") == tmp_path / "s" / "logs" / "kafka.log"
    assert stack.data_dir("kafka") == tmp_path / "s" / "kafka"


def test_default_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECONDREAD_STACK_DIR", raising=False)
    monkeypatch.delenv("SECONDREAD_CACHE_DIR", raising=False)
    assert stack.stack_dir() == stack.repo_root() / ".stack"
    assert (stack.repo_root() / "cli" / "src" / "secondread_cli" / "stack.py").exists()
    assert stack.cache_dir() == Path.home() / ".cache" / "secondread"


def test_relative_stack_dir_is_made_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECONDREAD_STACK_DIR", "rel/stack")
    assert stack.stack_dir().is_absolute()


# ---- pid files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [("1234\n", 1234), ("  42  ", 42), ("", None), ("abc", None), ("-5", None), ("0", None)],
)
def test_read_pid(tmp_path: Path, content: str, expected: int | None) -> None:
    path = tmp_path / "x.pid"
    path.write_text(content)
    assert stack.read_pid(path) == expected


def test_read_pid_missing(tmp_path: Path) -> None:
    assert stack.read_pid(tmp_path / "missing.pid") is None


def test_write_pid_is_atomic_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "run" / "kafka.pid"
    stack.write_pid(path, 777)
    assert stack.read_pid(path) == 777
    assert [p.name for p in path.parent.iterdir()] == ["kafka.pid"]


def test_pid_alive_for_self_and_for_a_dead_child() -> None:
    assert stack.pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not stack.pid_alive(child.pid)


def test_pid_alive_treats_zombies_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # not reaped yet: a zombie
            if Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                break
            time.sleep(0.01)
        assert not stack.pid_alive(child.pid)
    finally:
        child.wait()


def test_cmdline_matches() -> None:
    cmd = ["/usr/bin/java", "-cp", "/x/*", "kafka.Kafka", "/s/server.properties"]
    assert stack.cmdline_matches(cmd, "kafka.Kafka")
    assert stack.cmdline_matches(cmd, "server.properties")
    assert not stack.cmdline_matches(cmd, "versitygw")
    assert not stack.cmdline_matches([], "kafka.Kafka")


def test_live_pid_keeps_a_matching_process(tmp_path: Path) -> None:
    stack.write_pid(stack.pid_file("me", tmp_path), os.getpid())
    marker = stack.pid_cmdline(os.getpid())[0]
    assert stack.live_pid("me", marker, tmp_path) == os.getpid()
    assert stack.pid_file("me", tmp_path).exists()


def test_live_pid_removes_a_pid_file_whose_pid_was_reused(tmp_path: Path) -> None:
    stack.write_pid(stack.pid_file("kafka", tmp_path), os.getpid())  # alive, but not Kafka
    assert stack.live_pid("kafka", "kafka.Kafka", tmp_path) is None
    assert not stack.pid_file("kafka", tmp_path).exists()


def test_live_pid_removes_a_stale_pid_file(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stack.write_pid(stack.pid_file("mailpit", tmp_path), child.pid)
    assert stack.live_pid("mailpit", "python", tmp_path) is None
    assert not stack.pid_file("mailpit", tmp_path).exists()


def test_live_pid_removes_a_garbage_pid_file(tmp_path: Path) -> None:
    path = stack.pid_file("s3", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("not a pid")
    assert stack.live_pid("s3", "versitygw", tmp_path) is None
    assert not path.exists()


def test_port_open() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not stack.port_open(port)
        sock.listen(1)
        assert stack.port_open(port)


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert stack.tail(log, 3) == "line 97\nline 98\nline 99"
    assert stack.tail(tmp_path / "missing.log") == ""


# ---- component table -----------------------------------------------------------------------------


def test_components_in_start_order_with_unique_ports() -> None:
    table = stack.component_table()
    assert list(table) == list(stack.ALL_COMPONENTS)
    assert stack.ALL_COMPONENTS[:7] == (
        "postgres",
        "kafka",
        "s3",
        "orthanc",
        "orthanc-pacs",
        "jaeger",
        "mailpit",
    )
    ports = [p for c in table.values() for p in c.ports]
    assert len(ports) == len(set(ports))
    for name, port in SERVICE_PORTS.items():
        assert table[name].ports[0] == port
    assert table["ingest"].ports == (8001, 11112)


def test_select_orders_and_validates() -> None:
    assert stack.select(None) == list(stack.ALL_COMPONENTS)
    assert stack.select(["mailpit", "postgres", "kafka"]) == ["postgres", "kafka", "mailpit"]
    with pytest.raises(ValueError, match="unknown component"):
        stack.select(["postgres", "zookeeper"])


# ---- config rendering ----------------------------------------------------------------------------


def _props(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_kafka_properties(tmp_path: Path) -> None:
    props = _props(stack.render_kafka_properties(tmp_path / "data"))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "1"


def test_kafka_cluster_id_shape() -> None:
    cid = stack.new_kafka_cluster_id()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16
    assert cid != stack.new_kafka_cluster_id()


def test_pg_hba() -> None:
    hba = stack.render_pg_hba(["ingest", "routing"])
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert rules == [
        ["local", "all", "postgres", "trust"],
        ["host", "secondread", "ingest,routing", "127.0.0.1/32", "scram-sha-256"],
    ]


def test_pg_bootstrap_sql() -> None:
    sql = stack.render_pg_bootstrap(["ingest", "notify"])
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC;" in sql
    assert 'CREATE SCHEMA IF NOT EXISTS "ingest" AUTHORIZATION "ingest";' in sql
    assert "CREATE ROLE \"notify\" LOGIN PASSWORD 'notify-local';" in sql
    assert 'ALTER ROLE "notify" IN DATABASE "secondread" SET search_path = "notify";' in sql
    assert "SUPERUSER" not in sql.replace("NOSUPERUSER", "")


def test_sql_quoting() -> None:
    assert stack._sql_literal("a'b") == "'a''b'"
    assert stack._sql_ident('a"b') == '"a""b"'


def test_orthanc_configs(tmp_path: Path) -> None:
    plugin = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
    archive = json.loads(
        stack.render_orthanc_config(stack.ORTHANC_ARCHIVE, tmp_path / "a", plugins=[plugin])
    )
    pacs = json.loads(stack.render_orthanc_config(stack.ORTHANC_PACS, tmp_path / "p", plugins=[]))
    assert (archive["HttpPort"], archive["DicomPort"], archive["DicomAet"]) == (
        8042,
        4242,
        "SECONDREAD_ARCH",
    )
    assert (pacs["HttpPort"], pacs["DicomPort"], pacs["DicomAet"]) == (8043, 4243, "DEMO_PACS")
    assert archive["StorageDirectory"] == str(tmp_path / "a" / "storage")
    assert archive["IndexDirectory"] == str(tmp_path / "a" / "index")
    assert archive["Plugins"] == [str(plugin)]
    assert pacs["Plugins"] == []
    for cfg in (archive, pacs):
        assert cfg["RemoteAccessAllowed"] is False
        assert cfg["AuthenticationEnabled"] is False
        assert cfg["DicomAlwaysAllowStore"] is True
        assert cfg["StableAge"] == 5
    assert pacs["DicomModalities"]["secondread"] == ["SECONDREAD", "127.0.0.1", 11112]
    assert pacs["DicomModalities"]["archive"] == ["SECONDREAD_ARCH", "127.0.0.1", 4242]
    assert archive["DicomModalities"]["pacs"] == ["DEMO_PACS", "127.0.0.1", 4243]


def test_versitygw_command(tmp_path: Path) -> None:
    binary = tmp_path / "versitygw"
    plain = stack.versitygw_command(binary, tmp_path / "d", sidecar=None)
    assert plain == [
        str(binary),
        "--port",
        "127.0.0.1:9000",
        "--health",
        "/health",
        "posix",
        str(tmp_path / "d"),
    ]
    side = stack.versitygw_command(binary, tmp_path / "d", sidecar=tmp_path / "m")
    assert side[-3:] == ["--sidecar", str(tmp_path / "m"), str(tmp_path / "d")]
    assert side.index("posix") < side.index("--sidecar")  # backend flags after the backend


def test_xattr_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    assert isinstance(stack.supports_user_xattrs(tmp_path / "d"), bool)
    assert list((tmp_path / "d").iterdir()) == []


def test_service_components_run_from_repo_with_stack_env(tmp_path: Path) -> None:
    comp = stack.component_table()["routing"]
    assert comp.in_repo
    assert comp.command(tmp_path)[-2:] == ["-m", "secondread_routing"]
    assert comp.env(tmp_path) == {"SECONDREAD_STACK_DIR": str(tmp_path)}


def test_jaeger_config_binds_loopback_only() -> None:
    text = stack.jaeger_config().read_text()
    endpoints = re.findall(r"(?:endpoint|host):\s*(\S+)", text)
    assert endpoints
    assert all(e.startswith("127.0.0.1") for e in endpoints), endpoints


def test_owner_pid() -> None:
    assert stack.owner_pid('users:(("Orthanc",pid=19704,fd=7))') == 19704
    assert stack.owner_pid("unknown process") is None


def test_unknown_component_is_a_stack_error() -> None:
    with pytest.raises(stack.StackError):
        stack.select(["kafak"])
