"""Processes and ports: pid files, liveness, who holds a port, one-off commands.

Pure or nearly so (they read ``/proc`` and ask ``ss``); the supervisor builds on them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from secondread_cli.stack.errors import StackError
from secondread_cli.stack.paths import HOST, log_file, pid_file


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


def is_root() -> bool:
    return os.geteuid() == 0


def run(
    cmd: Sequence[str],
    *,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a short command and capture its output (``CalledProcessError`` when ``check``)."""
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


def run_logged(
    cmd: Sequence[str], *, stack: Path, component: str, what: str, timeout: float
) -> None:
    """Run a one-off preparation step, appending its output to the component's log."""
    log = log_file(component, stack)
    proc = run(cmd, timeout=timeout, check=False)
    with open(log, "a") as fh:
        fh.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise StackError(f"{what} failed; see {log}", component=component, log=log)
