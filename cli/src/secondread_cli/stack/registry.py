"""The component table: every component module's components, by name, in start order.

Names: each module's ``NAMES`` (``ALL_COMPONENTS``, one replica each), and for a replicated
module's component ``S`` the replicas ``S-2`` ... ``S-9``. ``S-1`` is another name of ``S``.
How many replicas the stack runs is remembered in ``<stack>/replicas`` (1 when absent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from secondread_cli.stack.component import Component, ComponentModule, Context
from secondread_cli.stack.components import MODULES
from secondread_cli.stack.errors import StackError, UnknownComponentError
from secondread_cli.stack.paths import replicas_file

MAX_REPLICAS = 9
"""The most replicas of each service the local stack runs (ingest-9 listens on DICOM 11120)."""


def check_replicas(replicas: int) -> int:
    """``replicas`` if it is a replica count the stack can run, else a StackError naming it."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise StackError(f"replicas must be between 1 and {MAX_REPLICAS}, not {replicas}")
    return replicas


def read_replicas(stack: Path) -> int:
    """The replica count ``up --replicas`` remembered for this stack folder (1 when none)."""
    path = replicas_file(stack)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= MAX_REPLICAS:
        raise StackError(
            f"{path} holds {text!r}, not a replica count between 1 and {MAX_REPLICAS}: "
            "fix it, or delete it for one replica"
        )
    return int(text)


def write_replicas(stack: Path, replicas: int) -> None:
    """Remember ``replicas`` for this stack folder (written atomically)."""
    path = replicas_file(stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{check_replicas(replicas)}\n")
    tmp.replace(path)


class Registry:
    """The components of some component modules (the stack's: :data:`REGISTRY`)."""

    def __init__(self, modules: Sequence[ComponentModule]):
        self.modules = tuple(modules)
        self.names: tuple[str, ...] = tuple(n for m in self.modules for n in m.NAMES)
        """Every component with one replica each, in start order."""
        self.replicated: tuple[str, ...] = tuple(
            n for m in self.modules if m.REPLICATED for n in m.NAMES
        )
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"component names listed twice: {self.names}")

    def parse(self, name: str) -> tuple[str, int] | None:
        """``(component, replica)`` of a known name (``S`` and ``S-1`` are replica 1), or None."""
        if name in self.names:
            return name, 1
        base, sep, number = name.rpartition("-")
        if sep and base in self.replicated and number.isdigit() and not number.startswith("0"):
            replica = int(number)
            if 1 <= replica <= MAX_REPLICAS:
                return base, replica
        return None

    @staticmethod
    def replica_name(base: str, replica: int) -> str:
        return base if replica == 1 else f"{base}-{replica}"

    def order(self, name: str) -> tuple[int, int]:
        """Sort key: start order, the replicas of a component together after it."""
        parsed = self.parse(name)
        if parsed is None:
            raise UnknownComponentError(f"unknown component {name}")
        base, replica = parsed
        return self.names.index(base), replica

    def configured(self, replicas: int) -> list[str]:
        """Every component of a stack that runs ``replicas`` replicas, in start order."""
        return [
            self.replica_name(base, k)
            for base in self.names
            for k in range(1, (replicas if base in self.replicated else 1) + 1)
        ]

    def select(self, names: Iterable[str] | None, replicas: int) -> list[str]:
        """Validate component names and return them in start order (all when ``names`` is None).

        A replicated component's plain name ``S`` stands for all its ``replicas`` replicas;
        ``S-k`` for replica k alone (any k up to ``MAX_REPLICAS``, even above ``replicas``).
        """
        if names is None:
            return self.configured(replicas)
        wanted = list(names)
        unknown = [n for n in wanted if self.parse(n) is None]
        if unknown:
            replicas_hint = (
                f" (and <{'|'.join(self.replicated)}>-<k> for replica k, 2..{MAX_REPLICAS})"
                if self.replicated
                else ""
            )
            raise UnknownComponentError(
                f"unknown component(s) {', '.join(unknown)}; known: "
                f"{', '.join(self.names)}{replicas_hint}"
            )
        chosen: set[str] = set()
        for name in wanted:
            base, replica = self.parse(name) or (name, 1)
            if name == base and base in self.replicated:
                chosen.update(self.replica_name(base, k) for k in range(1, replicas + 1))
            else:
                chosen.add(self.replica_name(base, replica))
        return sorted(chosen, key=self.order)

    def table(self, stack: Path, replicas: int) -> dict[str, Component]:
        """Every component by name, in start order, with ``replicas`` replicas of each service.

        Raises StackError when two components would listen on one port.
        """
        out: dict[str, Component] = {}
        owners: dict[int, str] = {}
        for module in self.modules:
            ctx = Context(stack=stack, replicas=replicas, taken=frozenset(owners))
            for comp in module.components(ctx):
                for port in comp.ports:
                    if port in owners:
                        raise StackError(
                            f"{comp.name} and {owners[port]} would both listen on port {port}"
                        )
                    owners[port] = comp.name
                out[comp.name] = comp
        return out

    def replicated_base(self, name: str) -> str | None:
        """The replicated component that ``name`` is a replica of (None if not replicated)."""
        parsed = self.parse(name)
        return parsed[0] if parsed and parsed[0] in self.replicated else None


REGISTRY = Registry(MODULES)
"""The local stack's components."""
