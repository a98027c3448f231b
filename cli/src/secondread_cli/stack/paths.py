"""Where the stack keeps its runtime data, and where it finds its tools."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from secondread_cli.stack.defaults import COMMON

HOST = COMMON.http_host
"""Every component of the local stack listens on this address (127.0.0.1)."""


def repo_root() -> Path:
    """The repository root (this file is ``<repo>/cli/src/secondread_cli/stack/paths.py``)."""
    return Path(__file__).resolve().parents[4]


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


def replicas_file(stack: Path | None = None) -> Path:
    """Where ``up --replicas N`` remembers N (one line)."""
    return (stack or stack_dir()) / "replicas"


def venv_python() -> str:
    """The repository's virtual environment's Python (the running one when there is none)."""
    candidate = repo_root() / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable
