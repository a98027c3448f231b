"""The pages' end-to-end tests drive Debian's Chromium with Playwright (never a downloaded
browser), and check accessibility with axe-core through axe-playwright-python.

Use the ``browser`` fixture from ``tests/e2e/conftest.py`` and :func:`serious_violations`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

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


ISSUER = "http://127.0.0.1:8180/realms/secondread"


def explain_failed_sign_in(page: Any, origin: str, redirect_uri: str) -> None:
    """Fail naming the usual cause of a sign-in that did not finish: the provider refuses the
    page's origin for the token request (else, what the page says)."""
    r = httpx.post(
        f"{ISSUER}/protocol/openid-connect/token",
        headers={"Origin": origin},
        data={"grant_type": "authorization_code", "client_id": "secondread-web", "code": "x",
              "redirect_uri": redirect_uri},
    )  # fmt: skip
    if r.status_code == 403 and "origin" in r.text.lower():
        pytest.fail(
            f"Keycloak refuses the origin {origin} for secondread-web ({r.text}): its "
            "webOrigins must list the pages' origins explicitly ('+' does not derive an origin "
            "from a wildcard-port redirect URI such as http://127.0.0.1:*)"
        )
    pytest.fail(f"sign-in did not finish; the page says: {page.inner_text('main')[:500]}")
