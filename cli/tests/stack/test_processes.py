"""Pid files, liveness and ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secondread_cli import stack


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


def test_owner_pid() -> None:
    assert stack.owner_pid('users:(("Orthanc",pid=19704,fd=7))') == 19704
    assert stack.owner_pid("unknown process") is None
