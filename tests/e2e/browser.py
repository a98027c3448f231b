"""The pages' end-to-end tests drive Debian's Chromium with Playwright (never a downloaded
browser), and check accessibility with axe-core through axe-playwright-python.

Use the ``browser`` fixture from ``tests/e2e/conftest.py`` and :func:`serious_violations`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium_path() -> str:
    """Debian's Chromium; installed by ``make up`` (deploy/local/install.sh)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("Debian's chromium is missing: run `make up` (apt install chromium)")
    return found


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on ``page``, one line each (rule: targets)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    out = []
    for v in results.response.get("violations", []):
        if v.get("impact") in ("serious", "critical"):
            targets = ", ".join(str(n.get("target")) for n in v.get("nodes", [])[:5])
            out.append(f"{v['id']} ({v['impact']}): {v.get('help')} at {targets}")
    return out
