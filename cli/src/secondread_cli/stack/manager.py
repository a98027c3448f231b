"""``up``, ``down``, ``status``: the stack's components as a whole, with their replicas.

``up`` starts what is not running (the infrastructure in order, then the services at once) and
is idempotent. ``up(replicas=N)`` remembers N in the stack folder, so that ``status``, ``down``,
``log_paths`` and a later plain ``up`` know how many replicas of each service there are, and
stops the replicas above N. A replica started by name above the count (``up(["ingest-2"])``) is
shown, stopped and listed as long as it runs, and left alone by a plain ``up``.

Every function takes the registry to work on (the stack's by default; tests pass their own).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from secondread_cli.stack.component import Component, ComponentStatus
from secondread_cli.stack.errors import StackError
from secondread_cli.stack.paths import data_dir, log_file, stack_dir
from secondread_cli.stack.processes import live_pid, port_open
from secondread_cli.stack.registry import (
    MAX_REPLICAS,
    REGISTRY,
    Registry,
    check_replicas,
    read_replicas,
    write_replicas,
)
from secondread_cli.stack.supervisor import (
    exclusive,
    is_healthy,
    say,
    start_concurrently,
    start_one,
    stop_one,
)


def replicas(stack: Path | None = None) -> int:
    """How many replicas of each service this stack runs (``up --replicas``; 1 by default)."""
    return read_replicas(stack or stack_dir())


def component_table(
    replicas: int | None = None, *, registry: Registry | None = None
) -> dict[str, Component]:
    """Every component by name, in start order (with the stack's replica count by default)."""
    reg = registry or REGISTRY
    stack = stack_dir()
    return reg.table(stack, read_replicas(stack) if replicas is None else replicas)


def select(
    names: Iterable[str] | None,
    *,
    replicas: int | None = None,
    registry: Registry | None = None,
) -> list[str]:
    """Validate component names and return them in start order (all when ``names`` is None).

    A service's name stands for all its replicas (the stack's count unless ``replicas``).
    """
    reg = registry or REGISTRY
    return reg.select(names, read_replicas(stack_dir()) if replicas is None else replicas)


def _scope(reg: Registry, components: Iterable[str] | None) -> tuple[str, ...]:
    """The replicated components whose every replica ``components`` names."""
    if components is None:
        return reg.replicated
    wanted = set(components)
    return tuple(b for b in reg.replicated if b in wanted)


def _running_above(
    reg: Registry, stack: Path, table: dict[str, Component], count: int, bases: Iterable[str]
) -> list[str]:
    """Replicas numbered above ``count`` of ``bases`` that this stack runs."""
    scope = set(bases)
    found: list[str] = []
    for path in sorted((stack / "run").glob("*.pid")):
        parsed = reg.parse(path.stem)
        if parsed is None or parsed[0] not in scope or parsed[1] <= count:
            continue
        name = reg.replica_name(*parsed)
        if name == path.stem and live_pid(name, table[name].marker, stack) is not None:
            found.append(name)
    return found


def _with_running(
    reg: Registry, stack: Path, table: dict[str, Component], components: Iterable[str] | None
) -> list[str]:
    """The selected components, plus running replicas above the count of the selected services."""
    wanted = None if components is None else list(components)
    count = read_replicas(stack)
    names = set(reg.select(wanted, count))
    names.update(_running_above(reg, stack, table, count, _scope(reg, wanted)))
    return sorted(names, key=reg.order)


def up(
    components: list[str] | None = None,
    *,
    timeout: float = 120,
    replicas: int | None = None,
    registry: Registry | None = None,
) -> None:
    """Start the given components (all by default) in order; wait for each to be healthy.

    ``replicas``: run this many replicas of each service from now on (remembered in the stack
    folder) and stop the replicas above it, of every service or of the services named.

    Raises StackError naming the component and its log file when one fails.
    """
    reg = registry or REGISTRY
    stack = stack_dir()
    count = read_replicas(stack) if replicas is None else check_replicas(replicas)
    names = reg.select(components, count)
    for sub in ("run", "logs"):
        (stack / sub).mkdir(parents=True, exist_ok=True)
    table = reg.table(stack, MAX_REPLICAS)
    with exclusive(stack):
        if replicas is not None:
            write_replicas(stack, replicas)
            extra = _running_above(reg, stack, table, replicas, _scope(reg, components))
            for name in sorted(extra, key=reg.order, reverse=True):
                stop_one(table[name], stack)
        for name in names:
            if reg.replicated_base(name) is None:
                start_one(table[name], stack, timeout)
        # The services depend on the infrastructure only, not on each other.
        services = [table[n] for n in names if reg.replicated_base(n) is not None]
        if services:
            say(f"starting {', '.join(c.name for c in services)} ...")
            start_concurrently(services, stack, timeout)


def down(components: list[str] | None = None, *, registry: Registry | None = None) -> None:
    """Stop the given components (all by default, every replica) in reverse start order.

    Data is kept. A port held by a process this stack did not start is reported and left alone.
    """
    reg = registry or REGISTRY
    stack = stack_dir()
    table = reg.table(stack, MAX_REPLICAS)
    names = _with_running(reg, stack, table, components)
    with exclusive(stack):
        for name in reversed(names):
            stop_one(table[name], stack)


def status(
    components: list[str] | None = None, *, registry: Registry | None = None
) -> list[ComponentStatus]:
    """The state of each component (all by default: every replica, and any running above)."""
    reg = registry or REGISTRY
    stack = stack_dir()
    table = reg.table(stack, MAX_REPLICAS)
    out: list[ComponentStatus] = []
    for name in _with_running(reg, stack, table, components):
        comp = table[name]
        pid = live_pid(name, comp.marker, stack)
        ok = is_healthy(comp)
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


def healthy(components: list[str] | None = None, *, registry: Registry | None = None) -> bool:
    """Whether every given component (all by default) is running from this stack and healthy."""
    return all(s.healthy and s.pid is not None for s in status(components, registry=registry))


def log_paths(
    components: list[str] | None = None, *, registry: Registry | None = None
) -> list[tuple[str, Path]]:
    """Each component's name and log file (the components ``status`` would list)."""
    reg = registry or REGISTRY
    stack = stack_dir()
    table = reg.table(stack, MAX_REPLICAS)
    return [(n, log_file(n, stack)) for n in _with_running(reg, stack, table, components)]


def reset_data(components: list[str] | None = None, *, registry: Registry | None = None) -> None:
    """Delete the data of stopped components (never of running ones)."""
    reg = registry or REGISTRY
    stack = stack_dir()
    table = reg.table(stack, MAX_REPLICAS)
    for name in reg.select(components, read_replicas(stack)):
        if live_pid(name, table[name].marker, stack) is not None:
            raise StackError(f"{name} is running; run down first", component=name)
        target = data_dir(name, stack)
        if target.exists():
            shutil.rmtree(target)
