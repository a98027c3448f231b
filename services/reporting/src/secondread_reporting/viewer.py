"""The diagnostic viewer at ``/viewer/`` and its DICOMweb proxy at ``/dicom-web/``.

``/viewer/`` serves the built OHIF Viewer (the npm package ``@ohif/app``'s ``dist/``, installed
from the committed npm lock) with reporting's own ``app-config.js``: one DICOMweb data source,
reporting's same-origin ``/dicom-web``, and nothing fetched from anywhere else. OHIF's bundles
are built for the site root; the public path is rewritten to ``/viewer/`` as they are served.

The reader's session is an ``HttpOnly`` cookie holding their verified access token
(:mod:`secondread_reporting.viewer_session`); the browser sends it with every DICOMweb request
OHIF makes. The proxy accepts it or an ``Authorization: Bearer`` header, and asks
:meth:`Reporting.dicomweb_plan` what the reader may
see. The routes only parse, authorise, call and stream.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from secondread_reporting.archive_dicomweb import PASSED_BACK, ArchiveDicomWeb, forwarded
from secondread_reporting.dicomweb import keep_studies
from secondread_reporting.errors import ApiError
from secondread_reporting.service import Reporting
from secondread_reporting.settings import ReportingSettings
from secondread_reporting.viewer_session import (
    OidcCodeFlow,
    SessionDeps,
    Verifier,
    build_session_router,
    radiologist,
    request_token,
)
from secondread_shared.errors import error_body

PREFIX = "/viewer/"
"""Where OHIF is served; also its ``routerBasename`` and its webpack public path."""
WEB = Path(__file__).parent / "viewer_web"
"""reporting's own viewer files: the sign-in module (package data)."""
MAX_SEARCH_BYTES = 8 * 1024 * 1024
"""A study-level search answer is filtered in memory; it names only the reader's studies."""

_REWRITTEN = {
    ".js": (b'__webpack_require__.p = "/";', f'__webpack_require__.p = "{PREFIX}";'.encode()),
    ".css": (b"url(/", f"url({PREFIX}".encode()),
}
"""What OHIF's bundles, built for the site root, say differently under ``/viewer/``: webpack's
public path (chunks, workers, wasm) and the stylesheets' font URLs."""
_HASHED = re.compile(r"\.[0-9a-f]{16}\.|^[0-9a-f]{16}\.wasm$")
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".jsonc": "application/json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".map": "application/json",
    ".xml": "application/xml",
}
_NOT_SERVED = {"app-config.js", "init-service-worker.js", "sw.js", "google.js", "_headers",
               "_redirects", "serve.json", "silent-refresh.html", "oidc-client.min.js"}  # fmt: skip
"""Files of OHIF's dist that are not part of this deployment (its sample configurations, its
service worker, which would cache studies, and its own OIDC client)."""


@dataclass
class ViewerDeps:
    settings: ReportingSettings
    verifier: Verifier
    reporting: Reporting
    archive: ArchiveDicomWeb


def get_viewer(request: Request) -> ViewerDeps:
    deps: ViewerDeps = request.app.state.viewer
    return deps


# ---- who is asking -------------------------------------------------------------------------


async def dicomweb_reader(
    request: Request, deps: Annotated[ViewerDeps, Depends(get_viewer)]
) -> str:
    """The reader id behind a DICOMweb request: the bearer token, else the session cookie."""
    return (await radiologist(deps.verifier, request_token(request, cookie=True))).username


# ---- OHIF's files ----------------------------------------------------------------------------


def app_config(settings: ReportingSettings, app_bundle: str) -> str:
    """OHIF's ``window.config``: reporting's DICOMweb proxy as the only data source, no study
    list (the worklist is at ``/read/``), nothing loaded from outside; and what the sign-in
    module needs (``window.secondreadViewer``)."""
    root = "/dicom-web"
    config = {
        "routerBasename": PREFIX.rstrip("/"),
        "extensions": [],
        "modes": [],
        # no guided tour over the images
        "customizationService": {"ohif.tours": []},
        "showStudyList": False,
        "investigationalUseDialog": {"option": "never"},
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "maxNumberOfWebWorkers": 2,
        "maxNumRequests": {"interaction": 100, "thumbnail": 4, "prefetch": 10},
        # load the shown series and the next (the prior) in the background, nearest slices first
        "studyPrefetcher": {
            "enabled": True,
            "displaySetsCount": 2,
            "maxNumPrefetchRequests": 10,
            "order": "closest",
        },
        "showErrorDetails": "always",
        "defaultDataSourceName": "secondread",
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "secondread",
                "configuration": {
                    "friendlyName": "secondread archive (through reporting)",
                    "name": "secondread",
                    "wadoUriRoot": root,
                    "qidoRoot": root,
                    "wadoRoot": root,
                    "qidoSupportsIncludeField": False,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": True,
                    "supportsFuzzyMatching": False,
                    "supportsWildcard": True,
                    "staticWado": False,
                    "singlepart": False,
                    "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
                    "omitQuotationForMultipartRequest": True,
                },
            }
        ],
    }
    viewer = {"sessionUrl": f"{PREFIX}session", "signinUrl": f"{PREFIX}signin",
              "appBundle": app_bundle}  # fmt: skip
    return (
        "// secondread: OHIF's configuration, generated by reporting (never OHIF's sample).\n"
        'console.time("scriptToView");\n'
        f"window.PUBLIC_URL = {json.dumps(PREFIX)};\n"
        "window.browserImportFunction = function (n) { return import(n); };\n"
        f"window.config = {json.dumps(config, indent=2)};\n"
        f"window.secondreadViewer = {json.dumps(viewer, indent=2)};\n"
    )


def _ohif_bundle(index_html: str) -> str:
    found = re.search(
        r'<script defer(?:="defer")? src="/(app\.bundle\.[0-9a-f]+\.js)">', index_html
    )
    if not found:
        raise ViewerNotInstalled("OHIF's index.html names no app bundle")
    return PREFIX + found.group(1)


def index_page(index_html: str) -> str:
    """OHIF's ``index.html`` for ``/viewer/``: assets under the prefix, no inline script, no
    service worker, and the app started by the sign-in module once the session is set."""
    _ohif_bundle(index_html)  # refuse an index.html this rewrite does not know
    html = re.sub(r"<script>.*?</script>", "", index_html, flags=re.S)
    html = re.sub(r'<script[^>]*init-service-worker\.js"></script>', "", html)
    html = re.sub(r'<script defer(="defer")? src="/app\.bundle\.[0-9a-f]+\.js"></script>', "", html)
    html = re.sub(r'<script rel="preload" as="script" src="/app-config\.js"></script>', "", html)
    # people may zoom (WCAG 1.4.4); no web-app manifest or home-screen widgets
    html = html.replace(",maximum-scale=1.0,user-scalable=no", "")
    html = re.sub(r'<link rel="(manifest|yandex-tableau-widget)"[^>]*>', "", html)
    html = html.replace('href="/', f'href="{PREFIX}').replace('src="/', f'src="{PREFIX}')
    html = html.replace('content="/assets/', f'content="{PREFIX}assets/')
    html = html.replace("<title>OHIF Viewer</title>", "<title>Viewer · secondread</title>")
    head = (
        f'<script src="{PREFIX}app-config.js"></script>'
        f'<script type="module" src="{PREFIX}secondread/viewer-session.js"></script>'
        f'<link rel="stylesheet" href="{PREFIX}secondread/viewer-session.css">'
    )
    status = (
        '<div id="secondread-status" role="status" aria-live="polite">'
        "<p>Signing in to the viewer…</p></div>"
    )
    html = html.replace("</head>", head + "</head>", 1)
    return html.replace('<div id="root"></div>', status + '<div id="root"></div>', 1)


class ViewerNotInstalled(Exception):
    """OHIF's built dist is not where the settings say."""


def _dist(settings: ReportingSettings) -> Path:
    dist = settings.viewer_dist_dir.resolve()
    if not (dist / "index.html").is_file():
        raise ViewerNotInstalled(
            f"the OHIF viewer is not installed at {dist}: run `make up` (it installs the npm "
            "lock in web/), or set SECONDREAD_VIEWER_DIST_DIR to OHIF's built dist/"
        )
    return dist


def _not_installed_page(reason: str) -> HTMLResponse:
    text = reason.replace("&", "&amp;").replace("<", "&lt;")
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Viewer not installed · secondread</title></head><body>"
        "<main><h1>The viewer is not installed</h1>"
        f"<p>{text}</p></main></body></html>",
        status_code=503,
        headers={"Cache-Control": "no-store"},
    )


def replace_in_chunks(chunks: Iterable[bytes], old: bytes, new: bytes) -> Iterator[bytes]:
    """``chunks`` with every ``old`` replaced by ``new``, also across chunk boundaries, holding
    at most one chunk and ``len(old) - 1`` bytes."""
    keep = len(old) - 1
    tail = b""
    for chunk in chunks:
        buf = tail + chunk
        out, start = [], 0
        while (i := buf.find(old, start)) >= 0:
            out += [buf[start:i], new]
            start = i + len(old)
        cut = max(start, len(buf) - keep)
        out.append(buf[start:cut])
        tail = buf[cut:]
        yield b"".join(out)
    if tail:
        yield tail


@functools.lru_cache(maxsize=256)
def _rewritten_length(path: Path, _mtime_ns: int, _size: int) -> int:
    """The length of ``path`` as served: without a Content-Length, Chromium fails to cache (and
    then to load) OHIF's 17 MB bundle; remembered per file version."""
    old, new = _REWRITTEN[path.suffix]
    return sum(len(chunk) for chunk in replace_in_chunks(_read_chunks(path), old, new))


def _read_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def _asset(dist: Path, rel: str) -> Path | None:
    path = (dist / rel).resolve()
    if not path.is_relative_to(dist) or not path.is_file():
        return None
    if path.parent == dist and path.name in _NOT_SERVED:
        return None
    return path


def _serve_asset(path: Path) -> Response:
    media = _TYPES.get(path.suffix, "application/octet-stream")
    immutable = bool(_HASHED.search(path.name))
    cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
    if path.suffix in _REWRITTEN:
        old, new = _REWRITTEN[path.suffix]
        body = replace_in_chunks(_read_chunks(path), old, new)
        stat = path.stat()
        length = _rewritten_length(path, stat.st_mtime_ns, stat.st_size)
        headers = {"Cache-Control": cache, "Content-Length": str(length)}
        return StreamingResponse(body, media_type=media, headers=headers)
    return FileResponse(path, media_type=media, headers={"Cache-Control": cache})


def content_security_policy(settings: ReportingSettings) -> str:
    """The viewer's pages load code from reporting only and talk to reporting and the identity
    provider only: no CDN, no analytics."""
    parts = urlsplit(settings.oidc_issuer)
    provider = f"{parts.scheme}://{parts.netloc}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src 'self' {provider}",
            "worker-src 'self' blob:",
            "frame-src 'self' blob:",
            "object-src 'self' blob:",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        ]
    )


# ---- routes ----------------------------------------------------------------------------------


def build_viewer_router(settings: ReportingSettings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    csp = {"Content-Security-Policy": content_security_policy(settings)}

    def page(html: str) -> HTMLResponse:
        return HTMLResponse(html, headers={**csp, "Cache-Control": "no-cache"})

    @router.get("/viewer")
    async def viewer_root() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=308)

    @router.get(f"{PREFIX}app-config.js")
    async def config_js(deps: Annotated[ViewerDeps, Depends(get_viewer)]) -> Response:
        try:
            index = (_dist(deps.settings) / "index.html").read_text()
            bundle = _ohif_bundle(index)
        except ViewerNotInstalled as exc:
            return JSONResponse(error_body("viewer_not_installed", str(exc)), 503)
        return Response(
            app_config(deps.settings, bundle),
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )

    @router.get(PREFIX + "secondread/{name}")
    async def own_file(name: str) -> Response:
        path = WEB / name
        if "/" in name or not path.is_file():
            return JSONResponse(error_body("not_found", f"no viewer file {name}"), 404)
        media = _TYPES.get(path.suffix, "application/octet-stream")
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})

    @router.get(PREFIX + "{rel:path}")
    async def ohif(rel: str, deps: Annotated[ViewerDeps, Depends(get_viewer)]) -> Response:
        """OHIF's files; any other path is one of OHIF's routes (``viewer?StudyInstanceUIDs=``)
        and gets its page."""
        try:
            dist = _dist(deps.settings)
        except ViewerNotInstalled as exc:
            return _not_installed_page(str(exc))
        if rel and rel != "index.html":
            found = _asset(dist, rel)
            if found is not None:
                return _serve_asset(found)
            if "." in rel.rsplit("/", 1)[-1]:
                return JSONResponse(error_body("not_found", f"no viewer file {rel}"), 404)
        try:
            return page(index_page((dist / "index.html").read_text()))
        except ViewerNotInstalled as exc:
            return _not_installed_page(str(exc))

    @router.api_route("/dicom-web/{path:path}", methods=["GET", "HEAD"])
    async def dicomweb(
        path: str,
        request: Request,
        deps: Annotated[ViewerDeps, Depends(get_viewer)],
        reader: Annotated[str, Depends(dicomweb_reader)],
    ) -> Response:
        """The archive's DICOMweb, for the studies of the reader's open cases only."""
        forward = await deps.reporting.dicomweb_plan(
            reader, path, request.query_params.multi_items()
        )
        if forward.empty:
            return JSONResponse([], headers={"Cache-Control": "no-store"})
        try:
            via = forwarded(request.headers.get("host", ""), request.url.scheme)
        except ValueError:
            via = forwarded(urlsplit(deps.settings.public_base_url).netloc, "http")
        upstream = await deps.archive.open(
            forward, accept=request.headers.get("accept"), forwarded_for=via
        )
        headers = {k: upstream.headers[k] for k in PASSED_BACK if k in upstream.headers}
        headers["Cache-Control"] = "no-store"
        headers["X-Content-Type-Options"] = "nosniff"
        if forward.keep_studies is not None and upstream.status_code == 200:
            try:
                body = await _read_bounded(upstream)
            finally:
                await upstream.aclose()
            kept = keep_studies(json.loads(body or b"[]"), forward.keep_studies)
            headers.pop("content-length", None)
            return Response(json.dumps(kept), upstream.status_code, headers=headers,
                            media_type="application/dicom+json")  # fmt: skip
        if request.method == "HEAD":
            await upstream.aclose()
            return Response(b"", upstream.status_code, headers=headers)
        return StreamingResponse(
            upstream.aiter_raw(64 * 1024),
            upstream.status_code,
            headers=headers,
            background=BackgroundTask(upstream.aclose),
        )

    @router.api_route("/dicom-web/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE"])
    async def read_only(path: str) -> JSONResponse:
        return JSONResponse(
            error_body("read_only", "the viewer's DICOMweb is read-only (QIDO-RS and WADO-RS)"),
            405,
            headers={"Allow": "GET, HEAD"},
        )

    return router


async def _read_bounded(upstream: Any) -> bytes:
    chunks, size = [], 0
    async for chunk in upstream.aiter_raw():
        size += len(chunk)
        if size > MAX_SEARCH_BYTES:
            raise ApiError("the search answer is too large: narrow it", code="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def mount_viewer(app: FastAPI, deps: ViewerDeps, flow: OidcCodeFlow) -> None:
    """Serve the viewer, its session and the DICOMweb proxy on ``app``."""
    app.state.viewer = deps
    app.state.viewer_session = SessionDeps(deps.verifier, flow)
    app.include_router(build_session_router())
    app.include_router(build_viewer_router(deps.settings))
