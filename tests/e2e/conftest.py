"""End-to-end fixtures: the real local stack, started when it is not already running."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from secondread_cli import stack

T = TypeVar("T")
ORTHANC = "http://127.0.0.1:8042"

RUNS_LAST = "runs_last"
"""Marker of a test that must run after every other test of the session: the clear-zone scan
(tests/e2e/test_zone_scan.py) looks at what all of them sent through the pipeline."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{RUNS_LAST}: runs after every other test of the session (see conftest)"
    )


def move_last(items: list[pytest.Item]) -> None:
    """Move the tests marked ``runs_last`` to the end, keeping the order within each group."""
    last = [i for i in items if i.get_closest_marker(RUNS_LAST) is not None]
    if last:
        items[:] = [i for i in items if i.get_closest_marker(RUNS_LAST) is None] + last


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run ``runs_last`` tests last, whatever the file order (trylast: after other reorderings)."""
    move_last(items)


@pytest.fixture(scope="session")
def running_stack() -> Iterator[None]:
    """Start every component that is not healthy yet (``make up`` semantics); leave it running."""
    if not stack.healthy():
        stack.up(timeout=180)
    yield


@dataclass(frozen=True)
class ZoneBaseline:
    """Where the clear zone stood when this test session began (see test_zone_scan.py)."""

    started: datetime
    orthanc_seq: int


@pytest.fixture(scope="session", autouse=True)
def zone_baseline(running_stack: None) -> ZoneBaseline:
    last = httpx.get(f"{ORTHANC}/changes", params={"last": ""}, timeout=10).json()
    return ZoneBaseline(started=datetime.now(UTC), orthanc_seq=int(last.get("Last", 0)))


def submit(folder: Path, question: str, report_file: Path, *extra: str) -> str:
    """Submit ``folder`` with the real ``secondread submit`` (demo hospital); its case id."""
    done = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", "submit", str(folder),
         "--question", question, "--report-file", str(report_file),
         "--physician-email", "referrer@example.org", *extra, "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    case_id: str = json.loads(done.stdout.strip().splitlines()[-1])["case_id"]
    return case_id


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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Debian Chromium per page-test module (Playwright, sync API).

    Per module, not per session: while Playwright's sync API runs, its event loop is the
    thread's running loop, so ``asyncio.run`` (which many e2e helpers use) fails; the modules
    after a page test must find it stopped."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import CHROMIUM_ARGS, chromium_path

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
