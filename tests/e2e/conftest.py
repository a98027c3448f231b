"""End-to-end fixtures: the real local stack, started when it is not already running."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from secondread_cli import stack

T = TypeVar("T")


@pytest.fixture(scope="session")
def running_stack() -> Iterator[None]:
    """Start every component that is not healthy yet (``make up`` semantics); leave it running."""
    if not stack.healthy():
        stack.up(timeout=180)
    yield


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.5
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
