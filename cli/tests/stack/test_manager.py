"""up, down and status with replicas, on a registry of small real processes (Python's
http.server), in a stack folder of the test's own."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secondread_cli import stack


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _http_server(name: str, port: int, replica: int = 1) -> stack.Component:
    def command(stack_path: Path) -> list[str]:
        folder = stack_path / name
        return [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "-b",
            "127.0.0.1",
            "-d",
            str(folder),
        ]

    return stack.Component(
        name=name,
        ports=(port,),
        url=f"http://127.0.0.1:{port}",
        marker="http.server",
        command=command,
        health=lambda: stack.http_ok(f"http://127.0.0.1:{port}/"),
        prepare=lambda stack_path: (stack_path / name).mkdir(parents=True, exist_ok=True),
        grace=5.0,
        replica=replica,
    )


class Box:
    """One infrastructure component."""

    NAMES = ("box",)
    REPLICATED = False

    def __init__(self, port: int) -> None:
        self.port = port

    def components(self, ctx: stack.Context) -> list[stack.Component]:
        return [_http_server("box", self.port)]


class Echo:
    """A replicated service: replica k on its own port."""

    NAMES = ("echo",)
    REPLICATED = True

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports

    def components(self, ctx: stack.Context) -> list[stack.Component]:
        return [
            _http_server(stack.replica_name("echo", k), self.ports[k - 1], k)
            for k in range(1, ctx.replicas + 1)
        ]


@pytest.fixture
def registry() -> Iterator[stack.Registry]:
    box, *echo = _free_ports(1 + stack.MAX_REPLICAS)
    reg = stack.Registry([Box(box), Echo(echo)])
    yield reg
    stack.down(registry=reg)


def _rows(reg: stack.Registry) -> dict[str, tuple[bool, str]]:
    return {s.name: (s.healthy, s.note) for s in stack.status(registry=reg)}


def test_replicas_are_started_remembered_shown_and_stopped(
    registry: stack.Registry, own_stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.up(replicas=2, registry=registry, timeout=60)
    out = capsys.readouterr().out
    assert "starting box ... ok (" in out
    assert "starting echo, echo-2 ..." in out
    assert "starting echo-2 ... ok (" in out
    assert (own_stack_dir / "replicas").read_text() == "2\n"
    assert _rows(registry) == {"box": (True, ""), "echo": (True, ""), "echo-2": (True, "")}
    assert stack.healthy(registry=registry)
    assert [n for n, _ in stack.log_paths(registry=registry)] == ["box", "echo", "echo-2"]

    # A later plain `up` knows about the second replica and leaves everything running.
    stack.up(registry=registry)
    out = capsys.readouterr().out
    assert "echo-2 already running (pid " in out
    assert "starting" not in out.replace("starting echo, echo-2 ...", "")

    # Down to one replica: the second is stopped, the first keeps running.
    pid_1 = stack.live_pid("echo", "http.server", own_stack_dir)
    stack.up(replicas=1, registry=registry)
    out = capsys.readouterr().out
    assert "stopping echo-2 (pid " in out
    assert _rows(registry) == {"box": (True, ""), "echo": (True, "")}
    assert stack.live_pid("echo", "http.server", own_stack_dir) == pid_1


def test_a_replica_started_by_name_is_shown_while_it_runs_and_stopped_with_its_service(
    registry: stack.Registry, own_stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.up(registry=registry, timeout=60)
    stack.up(["echo-3"], registry=registry, timeout=60)
    assert stack.replicas() == 1  # the count is not changed by naming a replica
    assert list(_rows(registry)) == ["box", "echo", "echo-3"]
    assert stack.status(["echo"], registry=registry)[-1].name == "echo-3"
    capsys.readouterr()
    stack.up(registry=registry)  # a plain up leaves it alone
    assert "stopping" not in capsys.readouterr().out
    assert _rows(registry)["echo-3"] == (True, "")

    stack.down(["echo"], registry=registry)
    out = capsys.readouterr().out
    assert out.index("stopping echo-3") < out.index("stopping echo (")
    assert _rows(registry) == {"box": (True, ""), "echo": (False, "stopped")}
    assert not stack.healthy(registry=registry)


def test_a_configured_replica_that_is_down_is_shown_stopped(
    registry: stack.Registry, own_stack_dir: Path
) -> None:
    stack.up(["box", "echo-1"], replicas=2, registry=registry, timeout=60)
    assert _rows(registry) == {
        "box": (True, ""),
        "echo": (True, ""),
        "echo-2": (False, "stopped"),
    }
