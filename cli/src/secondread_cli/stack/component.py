"""What the stack knows of one component, and what a component module provides."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass
class Component:
    """How to prepare, run, probe and bootstrap one component (one process)."""

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
    replica: int = 1
    """Which replica of its module's component this is (1 for everything not replicated)."""


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


@dataclass(frozen=True)
class Context:
    """What a component module is told when the table is built."""

    stack: Path
    replicas: int = 1
    """How many replicas of each replicated component (the services) to describe."""
    taken: frozenset[int] = frozenset()
    """The ports of the components listed before this module's (a module may avoid them)."""


class ComponentModule(Protocol):
    """A module of ``secondread_cli.stack.components``: one component (or a family of them).

    ``NAMES`` are its components' names in start order, known without building them;
    ``REPLICATED`` says whether they run as N replicas (replica k >= 2 is named ``<name>-<k>``);
    ``components`` builds them (every replica when replicated).
    """

    NAMES: tuple[str, ...]
    REPLICATED: bool

    def components(self, ctx: Context) -> list[Component]: ...
