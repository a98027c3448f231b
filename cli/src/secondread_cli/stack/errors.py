"""The stack manager's errors."""

from __future__ import annotations

from pathlib import Path


class StackError(RuntimeError):
    """A component could not be started or stopped; the message names it and its log."""

    def __init__(self, message: str, *, component: str | None = None, log: Path | None = None):
        super().__init__(message)
        self.component = component
        self.log = log
        self.progress = ""
        """What was printed while starting it, when it started in a worker thread."""


class UnknownComponentError(StackError, ValueError):
    """A component name that is not in the registry (``ALL_COMPONENTS`` or a replica name)."""
