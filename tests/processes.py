"""Start a small server process for a test and wait until it answers HTTP."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(command: Sequence[str], url: str, *, cwd: Path | None = None) -> Iterator[None]:
    """Run ``command`` until the block ends; enter once ``url`` answers (any HTTP status)."""
    proc = subprocess.Popen(list(command), cwd=cwd)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{command[0]} did not start serving {url}") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)
