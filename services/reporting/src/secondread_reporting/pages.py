"""The reading workspace at ``/read/``: static pages and modules, served by reporting itself.

The pages sign in with the OIDC authorization code flow and PKCE (keycloak-js, served from the
npm lock's ``web/node_modules``, never a CDN) and call the JSON API of :mod:`api` with the access
token as a bearer token. These routes only serve files and the sign-in configuration; every use
case stays in :mod:`secondread_reporting.service`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from secondread_reporting.settings import ReportingSettings
from secondread_shared.pages import SecurityHeaders

WEB = Path(__file__).parent / "web"
"""The workspace's HTML, CSS and JavaScript modules (package data)."""
KEYCLOAK_JS = Path("keycloak-js") / "lib" / "keycloak.js"


def content_security_policy(settings: ReportingSettings) -> str:
    """Scripts, styles and frames from reporting only; the provider for the token calls; blob:
    for the signed PDF shown in the page."""
    parts = urlsplit(settings.oidc_issuer)
    provider = f"{parts.scheme}://{parts.netloc}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            f"connect-src 'self' blob: {provider}",
            "frame-src 'self' blob:",
            "object-src 'self' blob:",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        ]
    )


def build_pages_router(settings: ReportingSettings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    index = WEB / "index.html"

    @router.get("/read")
    async def read_root() -> RedirectResponse:
        return RedirectResponse("/read/", status_code=308)

    @router.get("/read/")
    async def worklist_page() -> FileResponse:
        return FileResponse(index, media_type="text/html")

    @router.get("/read/cases/{case_id}")
    async def case_page(case_id: str) -> FileResponse:
        return FileResponse(index, media_type="text/html")

    @router.get("/read/config.json")
    async def config() -> dict[str, Any]:
        """What the pages need to sign in: the provider (discovery) and the public client."""
        return {
            "oidc_issuer": settings.oidc_issuer,
            "client_id": settings.web_client_id,
            "viewer_base_url": settings.viewer_base_url,
        }

    @router.get("/read/vendor/keycloak.js")
    async def keycloak_js() -> Response:
        path = settings.web_packages_dir / KEYCLOAK_JS
        if not path.is_file():
            return JSONResponse(
                {"error": {"code": "not_installed",
                           "message": f"{path} is missing: run `make up` (npm ci in web/)"}},
                503,
            )  # fmt: skip
        return FileResponse(path, media_type="text/javascript")

    return router


def mount_pages(app: FastAPI, settings: ReportingSettings) -> None:
    """Serve the reading workspace on ``app``: pages, modules, and their security headers."""
    app.include_router(build_pages_router(settings))
    app.mount("/read/static", StaticFiles(directory=WEB), name="read-static")
    app.add_middleware(
        SecurityHeaders, csp=content_security_policy(settings), prefix="/read", cache="no-cache"
    )
