"""The upload portal at ``/portal/``: pages, their JSON API, the tus endpoint, and the wiring.

Routes only parse, authorise and call :class:`~secondread_ingest.portal_service.PortalService`:

- ``GET /portal/`` the upload page (the link's token is in the address's fragment, so it never
  reaches a server log), ``GET /portal/status`` the status page (its capability in the fragment
  too), ``GET /portal/admin/`` where a hospital admin signs in (keycloak-js, PKCE) and makes links;
- ``GET /portal/api/link`` (header ``X-Portal-Link``): what a link allows;
- ``POST /portal/api/submissions`` (``X-Portal-Link``): the case form; answers the status
  capability;
- ``GET /portal/api/status`` (header ``X-Portal-Status``): the status page's data;
- ``POST|GET /portal/api/links`` (bearer token, role ``hospital_admin``, claim ``hospital``);
- ``/portal/tus/`` the tus endpoint (header ``X-Portal-Status`` on every request);
- ``/portal/vendor/{dcmjs,tus,keycloak}.js`` from the npm lock's ``web/node_modules``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any
from urllib.parse import urlsplit

import jwt
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from opentelemetry import trace
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from tuspyserver import create_tus_router

from secondread_ingest import links
from secondread_ingest.api import upload_objects
from secondread_ingest.errors import InputRejected
from secondread_ingest.intake import IntakeForm
from secondread_ingest.links import LinkError
from secondread_ingest.portal_repository import PortalRepository, SubmissionRow
from secondread_ingest.portal_service import FormInvalid, LinkService, PortalService
from secondread_ingest.service import IngestDeps, record_upload
from secondread_ingest.settings import IngestSettings
from secondread_ingest.tus import SharedUploadStore
from secondread_shared import topics
from secondread_shared.broker import subscriber_options
from secondread_shared.db import Database
from secondread_shared.errors import PermanentError, Unauthenticated
from secondread_shared.logging import get_logger
from secondread_shared.oidc import TokenVerifier
from secondread_shared.pages import SecurityHeaders
from secondread_shared.secrets import load_key
from secondread_shared.service import Runtime
from secondread_shared.tracing import CASE_ID_ATTRIBUTE

log = get_logger(__name__)
tracer = trace.get_tracer("secondread.ingest")

WEB = Path(__file__).parent / "portal_web"
"""The portal's HTML, CSS and JavaScript (package data)."""
VENDOR = {
    "dcmjs.js": Path("dcmjs") / "build" / "dcmjs.js",
    "tus.js": Path("tus-js-client") / "dist" / "tus.js",
    "keycloak.js": Path("keycloak-js") / "lib" / "keycloak.js",
}
LINK_STATUS = {
    "link_invalid": 403,
    "link_expired": 410,
    "link_revoked": 410,
    "link_used": 409,
    "unknown_hospital": 422,
    "bad_expiry": 422,
    "bad_max_cases": 422,
}
HOSPITAL_ADMIN = "hospital_admin"


def link_key(settings: IngestSettings) -> bytes:
    """The HMAC key of upload links (``SECONDREAD_PORTAL_LINK_KEY`` or ``..._FILE``; generated
    once under the stack folder on the local stack only)."""
    return load_key(
        "portal_link_key",
        settings.portal_link_key,
        settings.portal_link_key_file,
        local_path=settings.stack_dir / "ingest" / "portal-link.key",
        environment=settings.environment,
    )


def link_service(settings: IngestSettings, repo: PortalRepository) -> LinkService:
    """The link use cases with ingest's key, hospitals and public address."""
    return LinkService(
        repo=repo,
        key=link_key(settings),
        hospitals=lambda: known_hospitals(settings),
        public_url=settings.portal_public_url,
    )


def known_hospitals(settings: IngestSettings) -> set[str]:
    """Every hospital ingest knows: by DICOM config or by API key."""
    return set(settings.hospitals) | set(settings.api_keys.values())


def check_settings(settings: IngestSettings) -> None:
    """Outside ``local``, a local link address is refused (upload links would point nowhere);
    the local demo identity provider is refused by the settings themselves
    (:class:`~secondread_shared.settings.PagesSettings`)."""
    if settings.environment == "local":
        return
    value = settings.portal_public_url
    if any(h in value for h in ("127.0.0.1", "localhost")):
        raise ValueError(
            f"SECONDREAD_PORTAL_PUBLIC_URL is a local address ({value}) in the "
            f"{settings.environment!r} environment: name the real one"
        )


class IngestCases:
    """:class:`~secondread_ingest.portal_service.CaseOpener` on ingest's own upload use case
    (the function behind ``POST /v1/cases``), so a portal case is validated and stored the same
    way, all or nothing."""

    def __init__(self, deps: IngestDeps) -> None:
        self.deps = deps

    async def open_from_zip(
        self, *, case_id: str, hospital_id: str, intake: IntakeForm, zip_file: IO[bytes]
    ) -> int:
        upload = UploadFile(
            file=zip_file,  # type: ignore[arg-type]
            filename="portal-upload.zip",
            headers=Headers({"content-type": "application/zip"}),
        )
        with tracer.start_as_current_span(
            "ingest portal_open_case", attributes={CASE_ID_ATTRIBUTE: case_id}
        ):
            n = await record_upload(
                self.deps, case_id, hospital_id, intake,
                upload_objects([upload], self.deps.settings),
            )  # fmt: skip
        if not intake.fetch_priors:
            await self.deps.desk.announce(case_id)
        return n

    async def case_exists(self, case_id: str) -> bool:
        return await self.deps.repo.get_case(case_id) is not None

    async def case_status(self, case_id: str) -> str | None:
        row = await self.deps.repo.get_case(case_id)
        return None if row is None else row.status


class PortalWorker:
    """Opens the cases whose uploads are complete, on every replica (claims in PostgreSQL)."""

    def __init__(self, service: PortalService, poll_s: float) -> None:
        self.service = service
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="portal-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.service.adopt_finished()
                while await self.service.open_next_case():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round retries; the error is visible
                log.error("portal_worker_failed", error=type(exc).__name__, detail=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()


def content_security_policy(settings: IngestSettings) -> str:
    parts = urlsplit(settings.oidc_issuer)
    provider = f"{parts.scheme}://{parts.netloc}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {provider}",
            f"frame-src 'self' {provider}",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _link_error(exc: LinkError) -> InputRejected:
    return InputRejected(exc.code, exc.message, status=LINK_STATUS.get(exc.code, 403))


def build_portal_router(
    settings: IngestSettings, service: PortalService, verifier: TokenVerifier
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def page(name: str) -> Callable[[], Awaitable[FileResponse]]:
        async def serve() -> FileResponse:
            return FileResponse(WEB / name, media_type="text/html")

        return serve

    @router.get("/portal")
    async def portal_root() -> RedirectResponse:
        return RedirectResponse("/portal/", status_code=308)

    router.add_api_route("/portal/", page("index.html"), methods=["GET"])
    router.add_api_route("/portal/status", page("status.html"), methods=["GET"])
    router.add_api_route("/portal/admin/", page("admin.html"), methods=["GET"])

    @router.get("/portal/admin")
    async def admin_root() -> RedirectResponse:
        return RedirectResponse("/portal/admin/", status_code=308)

    @router.get("/portal/config.json")
    async def config() -> dict[str, Any]:
        return {
            "oidc_issuer": settings.oidc_issuer,
            "client_id": settings.web_client_id,
            "tus_endpoint": "/portal/tus/",
            "max_upload_bytes": settings.max_upload_bytes,
        }

    @router.get("/portal/vendor/{name}")
    async def vendor(name: str) -> Response:
        rel = VENDOR.get(name)
        if rel is None:
            raise InputRejected("not_found", f"no vendor file {name}", status=404)
        path = settings.web_packages_dir / rel
        if not path.is_file():
            raise InputRejected(
                "not_installed", f"{path} is missing: run `make up` (npm ci in web/)", status=503
            )
        return FileResponse(path, media_type="text/javascript")

    @router.get("/portal/api/link")
    async def link_info(
        x_portal_link: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        try:
            opened = await service.links.open_link(_required(x_portal_link, "X-Portal-Link"))
        except LinkError as exc:
            raise _link_error(exc) from exc
        return {
            "hospital": opened.claims.hospital_id,
            "expires_at": opened.claims.expires_at.isoformat(),
            "usable": opened.usable,
            "code": opened.code,
            "reason": opened.reason,
        }

    @router.post("/portal/api/submissions", status_code=201)
    async def submit(
        request: Request,
        x_portal_link: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        token = _required(x_portal_link, "X-Portal-Link")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        pdf: bytes | None = None
        if ctype == "application/json":
            raw: Any = await request.body()
        elif ctype == "multipart/form-data":
            async with request.form(max_files=1, max_fields=4) as form:
                raw = form.get("form")
                report = form.get("report_pdf")
                if isinstance(report, UploadFile):
                    pdf = await report.read()
                if isinstance(raw, UploadFile):
                    raw = await raw.read()
        else:
            raise InputRejected(
                "wrong_content_type", "send the form as JSON or multipart/form-data", status=415
            )
        try:
            body = json.loads(raw or b"")
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputRejected("bad_intake", "the form is not JSON") from exc
        if not isinstance(body, dict):
            raise InputRejected("bad_intake", "the form must be a JSON object")
        try:
            done = await service.submit_form(
                link_token=token,
                intake=body.get("intake"),
                summary=body.get("summary"),
                upload_length=body.get("upload_length"),
                report_pdf=pdf,
            )
        except LinkError as exc:
            raise _link_error(exc) from exc
        except FormInvalid as exc:
            return JSONResponse(
                {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}},
                status_code=422,
            )
        return JSONResponse(
            {
                "status_token": done.status_token,
                "status_url": f"/portal/status#status={done.status_token}",
                "tus_endpoint": "/portal/tus/",
            },
            status_code=201,
        )

    @router.get("/portal/api/status")
    async def status(
        x_portal_status: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        return await service.status(_required(x_portal_status, "X-Portal-Status"))

    async def hospital_admin(
        authorization: Annotated[str | None, Header()] = None,
    ) -> tuple[str, str]:
        """``(username, hospital)`` of a hospital admin's bearer token (401/403 otherwise)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InputRejected(
                "unauthenticated", "sign in: send 'Authorization: Bearer <token>'", status=401
            )
        try:
            who = await verifier.verify(token)
        except Unauthenticated as exc:
            raise InputRejected("unauthenticated", exc.message, status=401) from exc
        if not who.has(HOSPITAL_ADMIN):
            raise InputRejected(
                "forbidden", "creating upload links needs the hospital_admin role", status=403
            )
        # The signature was verified above; this only reads the hospital claim of that token.
        claims = jwt.decode(token, options={"verify_signature": False})
        hospital = claims.get("hospital")
        if not isinstance(hospital, str) or not hospital:
            raise InputRejected(
                "forbidden", "this account names no hospital (the 'hospital' claim)", status=403
            )
        return who.username, hospital

    # A default, not ``Annotated``: the annotations are strings (``from __future__``), which
    # FastAPI resolves in the module, where this closure's dependency does not exist.
    as_admin = Depends(hospital_admin)

    @router.post("/portal/api/links", status_code=201)
    async def create_link(request: Request, admin: tuple[str, str] = as_admin) -> dict[str, Any]:
        username, hospital = admin
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        if not isinstance(body, dict):
            body = {}
        try:
            created = await service.links.create_link(
                hospital_id=hospital,
                created_by=f"hospital_admin:{username}",
                expires_in=links.parse_duration(str(body.get("expires_in", "7d"))),
                max_cases=_int(body.get("max_cases", 1), "max_cases"),
            )
        except LinkError as exc:
            raise _link_error(exc) from exc
        return {
            "url": created.url,
            "hospital": created.hospital_id,
            "expires_at": created.expires_at.isoformat(),
        }

    @router.get("/portal/api/links")
    async def list_links(admin: tuple[str, str] = as_admin) -> dict[str, Any]:
        rows = await service.repo.links_of(admin[1], limit=20)
        now = datetime.now(UTC)
        return {
            "hospital": admin[1],
            "links": [
                {
                    "created_at": r.created_at.isoformat(),
                    "created_by": r.created_by,
                    "expires_at": r.expires_at.isoformat(),
                    "max_cases": r.max_cases,
                    "cases": r.submissions,
                    "status": "withdrawn"
                    if r.revoked_at
                    else "used"
                    if r.submissions >= r.max_cases
                    else "expired"
                    if r.expires_at <= now
                    else "open",
                }
                for r in rows
            ],
        }

    return router


def _required(value: str | None, header: str) -> str:
    if not value or not value.strip():
        raise InputRejected("unauthenticated", f"the {header} header is required", status=401)
    return value.strip()


def _int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputRejected("bad_request", f"{field} must be a whole number")
    return value


def build_tus_router(service: PortalService, uploads: SharedUploadStore, max_size: int) -> Any:
    """tuspyserver's router at ``/portal/tus``; every request must carry the submission's status
    capability (``X-Portal-Status``), and an upload answers only to its own submission."""

    async def no_auth() -> None:
        return None

    async def new_upload_id(request: Request) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        row: SubmissionRow | None = getattr(request.state, "portal_submission", None)

        async def choose(_metadata: dict[str, Any]) -> dict[str, Any]:
            if request.method != "POST" or row is None:
                return {}
            return {"uid": await service.attach_upload(row)}

        return choose

    async def on_complete(request: Request) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
        upload_id = str(request.path_params.get("uuid", ""))

        async def finished(_location: str, _metadata: dict[str, Any]) -> None:
            await service.upload_finished(upload_id)

        return finished

    create: Any = create_tus_router  # its hints say sync callables; it awaits async ones
    return create(
        prefix="portal/tus",
        files_dir="/nonexistent",  # unused: every byte goes through ``storage``
        max_size=max_size,
        auth=no_auth,
        days_to_keep=7,
        upload_complete_dep=on_complete,
        file_dep=new_upload_id,
        storage=uploads,
    )


def tus_guard(service: PortalService) -> Callable[..., Awaitable[None]]:
    async def guard(
        request: Request,
        x_portal_status: Annotated[str | None, Header()] = None,
    ) -> None:
        if request.method == "OPTIONS":
            return
        row = await service.submission(_required(x_portal_status, "X-Portal-Status"))
        uid = request.path_params.get("uuid")
        if uid is not None and uid != row.upload_id:
            raise InputRejected("not_found", "no such upload for this case", status=404)
        if request.method == "POST":
            if request.headers.get("upload-concat") or request.headers.get("upload-defer-length"):
                raise InputRejected(
                    "unsupported", "send the study as one upload of declared length", status=400
                )
            length = request.headers.get("upload-length", "")
            if not length.isdigit() or int(length) != row.upload_length:
                raise InputRejected(
                    "wrong_length",
                    f"Upload-Length must be the {row.upload_length} bytes the form declared",
                    status=400,
                )
        request.state.portal_submission = row

    return guard


def add_error_handler(app: FastAPI) -> None:
    """tuspyserver's refusals (``HTTPException``) in ingest's error body under ``/portal/``;
    other routes keep FastAPI's."""

    @app.exception_handler(StarletteHTTPException)
    async def portal_http_errors(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/portal/"):
            return await http_exception_handler(request, exc)
        code = {404: "not_found", 409: "offset_mismatch", 410: "expired", 412: "tus_version",
                413: "too_large", 415: "wrong_content_type", 503: "busy"}  # fmt: skip
        return JSONResponse(
            {"error": {"code": code.get(exc.status_code, "bad_request"), "message": exc.detail}},
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )


def install(
    app: FastAPI,
    runtime: Runtime,
    settings: IngestSettings,
    deps: IngestDeps,
    db: Database,
) -> PortalService:
    """Serve the portal on ``app``: pages, API, tus, the case-opening worker and the status
    subscriber (call after the database's ``on_start`` hook is registered)."""
    check_settings(settings)
    repo = PortalRepository(db)
    uploads = SharedUploadStore(repo, deps.store, settings.bucket_raw, settings.db_dsn)
    service = PortalService(
        repo=repo,
        links=link_service(settings, repo),
        uploads=uploads,
        cases=IngestCases(deps),
        max_upload_bytes=settings.max_upload_bytes,
    )
    worker = PortalWorker(service, settings.portal_poll_s)
    service.wake = worker.wake
    verifier = TokenVerifier(settings.oidc_issuer, settings.oidc_audience)

    runtime.on_start.append(repo.migrate)
    runtime.on_stop.append(verifier.aclose)
    runtime.background.append((worker.start, worker.stop))

    async def case_status(event: dict[str, Any]) -> None:
        """``secondread.case.status.v1``: the last state of a portal case, for its status page
        (any state, known or not, is kept as it is). Anything that is not a status event is
        refused by name, so it is dead-lettered with that reason rather than skipped."""
        kind = event.get("event_type")
        if kind != "case.status":
            raise PermanentError(f"event_type {kind!r} on the status topic: case.status expected")
        case_id, state, at = event.get("case_id"), event.get("state"), event.get("occurred_at")
        if not (isinstance(case_id, str) and isinstance(state, str) and isinstance(at, str)):
            raise PermanentError("a case.status event needs string case_id, state, occurred_at")
        try:
            when = datetime.fromisoformat(at)
        except ValueError as exc:
            raise PermanentError(f"occurred_at {at[:40]!r} is not an ISO 8601 time") from exc
        await service.case_status_changed(case_id, state, when)

    runtime.broker.subscriber(topics.CASE_STATUS, **subscriber_options("ingest"))(case_status)

    add_error_handler(app)
    app.include_router(build_portal_router(settings, service, verifier))
    app.include_router(
        build_tus_router(service, uploads, settings.max_upload_bytes),
        dependencies=[Depends(tus_guard(service))],
        include_in_schema=False,
    )
    app.mount("/portal/static", StaticFiles(directory=WEB), name="portal-static")
    app.add_middleware(
        SecurityHeaders, csp=content_security_policy(settings), prefix="/portal", cache="no-store"
    )
    return service
