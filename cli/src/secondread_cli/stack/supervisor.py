"""Starting, watching and stopping component processes.

Each component runs detached (its own session) with its pid in ``<stack>/run/<name>.pid`` and its
output appended to ``<stack>/logs/<name>.log``. Starting waits for the health check; stopping sends
the component's stop signal and, after its grace period, SIGKILL to its process group. ``up`` and
``down`` of one stack folder are serialised by a lock file.

Progress goes to stdout as whole lines (``starting kafka ... ok (4.4s)``); components started in
worker threads buffer theirs and print it when done, so lines never interleave.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from secondread_cli.stack.component import Component
from secondread_cli.stack.errors import StackError
from secondread_cli.stack.paths import data_dir, log_file, pid_file, repo_root
from secondread_cli.stack.processes import (
    cmdline_matches,
    is_root,
    live_pid,
    owner_pid,
    pid_alive,
    pid_cmdline,
    port_open,
    port_owner,
    tail,
    write_pid,
)

_OUT = threading.local()
"""Per-thread progress buffer: services start concurrently and print whole lines when done."""


def say(message: str, *, end: str = "\n") -> None:
    """Print progress (or buffer it, in a worker thread of :func:`start_concurrently`)."""
    buf: list[str] | None = getattr(_OUT, "buf", None)
    if buf is not None:
        buf.append(message + end)
    else:
        print(message, end=end, flush=True)


def is_healthy(comp: Component) -> bool:
    """The component's health check, skipped (False) when its main port is closed."""
    return port_open(comp.ports[0]) and comp.health()


def _fail(comp: Component, stack: Path, reason: str) -> StackError:
    log = log_file(comp.name, stack)
    last = tail(log, 20)
    say("FAILED")
    if last:
        print(f"--- last lines of {log} ---\n{last}\n---", file=sys.stderr, flush=True)
    return StackError(f"{comp.name}: {reason}; see {log}", component=comp.name, log=log)


def spawn(comp: Component, stack: Path) -> subprocess.Popen[bytes]:
    """Start ``comp`` detached, its output appended to its log; write its pid file."""
    log = log_file(comp.name, stack)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = comp.command(stack)
    env = {**os.environ, **comp.env(stack)}
    kwargs: dict[str, Any] = {}
    cwd = repo_root() if comp.in_repo else data_dir(comp.name, stack)
    cwd.mkdir(parents=True, exist_ok=True)
    if comp.run_as and is_root():
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
        say("FAILED")
        raise StackError(
            f"{comp.name}: bootstrap failed: {type(exc).__name__}: {exc}",
            component=comp.name,
            log=log_file(comp.name, stack),
        ) from exc
    return f" [{'; '.join(notes)}]" if notes else ""


def start_one(comp: Component, stack: Path, timeout: float) -> None:
    """Start ``comp`` unless it runs already; wait until healthy; run its bootstrap."""
    t0 = time.monotonic()
    pid = live_pid(comp.name, comp.marker, stack)
    if pid is not None:
        if is_healthy(comp):
            extra = _bootstrap(comp, stack)
            say(f"{comp.name} already running (pid {pid}){extra}")
            return
        # Ours but not (yet) healthy, e.g. still starting from an earlier `up`: wait for it.
        say(f"waiting for {comp.name} (pid {pid}) ... ", end="")
        wait_healthy(comp, stack, None, pid, timeout, t0)
        extra = _bootstrap(comp, stack)
        say(f"ok ({time.monotonic() - t0:.1f}s){extra}")
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
    say(f"starting {comp.name} ... ", end="")
    try:
        comp.prepare(stack)
    except StackError:
        say("FAILED")
        raise
    proc = spawn(comp, stack)
    try:
        wait_healthy(comp, stack, proc, proc.pid, timeout, t0)
        extra = _bootstrap(comp, stack)
    except StackError:
        stop_pid(comp, proc.pid, stack, quiet=True)
        raise
    except BaseException:  # e.g. Ctrl-C while waiting: do not leave a half-started process
        stop_pid(comp, proc.pid, stack, quiet=True)
        raise
    say(f"ok ({time.monotonic() - t0:.1f}s){extra}")


def _start_buffered(comp: Component, stack: Path, timeout: float) -> str:
    """:func:`start_one` in a worker thread; returns its progress text."""
    _OUT.buf = []
    try:
        start_one(comp, stack, timeout)
    except StackError as exc:
        exc.progress = "".join(_OUT.buf)
        raise
    finally:
        text = "".join(_OUT.buf)
        _OUT.buf = None
    return text


def start_concurrently(comps: list[Component], stack: Path, timeout: float) -> None:
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


def wait_healthy(
    comp: Component,
    stack: Path,
    proc: subprocess.Popen[bytes] | None,
    pid: int,
    timeout: float,
    t0: float,
) -> None:
    """Poll the health check until it passes; fail when the process exits or time runs out."""
    limit = max(timeout, comp.startup_timeout or 0.0)
    delay = 0.1
    while True:
        if proc is not None and proc.poll() is not None:
            pid_file(comp.name, stack).unlink(missing_ok=True)
            raise _fail(comp, stack, f"exited with status {proc.returncode} during startup")
        if proc is None and not pid_alive(pid):
            pid_file(comp.name, stack).unlink(missing_ok=True)
            raise _fail(comp, stack, "process exited during startup")
        if is_healthy(comp):
            return
        if time.monotonic() - t0 > limit:
            raise _fail(comp, stack, f"not healthy within {limit:g}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def stop_pid(comp: Component, pid: int, stack: Path, *, quiet: bool = False) -> None:
    """Send the stop signal; SIGKILL the process group after the grace period; drop the pid file."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, comp.stop_signal)
    deadline = time.monotonic() + comp.grace
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        if not quiet:
            say(f"(no exit after {comp.grace:.0f}s, SIGKILL) ", end="")
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


def stop_one(comp: Component, stack: Path) -> None:
    """Stop ``comp`` if this stack runs it; report a port held by another process and leave it."""
    pid = live_pid(comp.name, comp.marker, stack)
    if pid is None:
        busy = [p for p in comp.ports if port_open(p)]
        if busy:
            say(
                f"{comp.name}: not started by this stack, left alone (port(s) "
                f"{', '.join(map(str, busy))} held by {port_owner(busy[0])})"
            )
        return
    t0 = time.monotonic()
    say(f"stopping {comp.name} (pid {pid}) ... ", end="")
    stop_pid(comp, pid, stack)
    say(f"ok ({time.monotonic() - t0:.1f}s)")


@contextlib.contextmanager
def exclusive(stack: Path) -> Iterator[None]:
    """Serialise ``up``/``down`` of one stack dir (two concurrent ``up`` would race on ports)."""
    lock = stack / "run" / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another `up`/`down` on {stack} ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
