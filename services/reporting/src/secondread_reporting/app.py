"""reporting composition root."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from secondread_reporting import handlers
from secondread_reporting.api import ReportingDeps, build_router
from secondread_reporting.archive_dicomweb import ArchiveDicomWeb
from secondread_reporting.errors import ApiError, ArchiveUnavailable, IncompleteReport
from secondread_reporting.pages import mount_pages
from secondread_reporting.publisher import ArchivePublisher
from secondread_reporting.repository import MIGRATIONS, ReportingRepository, migrate
from secondread_reporting.service import Reporting, SystemClock
from secondread_reporting.settings import ReportingSettings
from secondread_reporting.viewer import ViewerDeps, mount_viewer
from secondread_reporting.viewer_session import OidcCodeFlow
from secondread_shared import topics
from secondread_shared.broker import subscriber_options
from secondread_shared.db import Database
from secondread_shared.errors import error_body
from secondread_shared.events import CaseAssigned, RosterChanged
from secondread_shared.oidc import TokenVerifier
from secondread_shared.orthanc import OrthancClient
from secondread_shared.outbox import OutboxRelay
from secondread_shared.secrets import fernet_from_key, load_key
from secondread_shared.service import build_runtime, create_http_app
from secondread_shared.storage import ObjectStore


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    runtime = build_runtime(settings, "reporting")
    master = load_key(
        "signing_master_key",
        settings.signing_master_key,
        settings.signing_master_key_file,
        local_path=settings.stack_dir / "secrets" / "signing-master.key",
        environment=settings.environment,
    )
    db = Database(settings.db_dsn)
    repo = ReportingRepository(db, fernet_from_key(master))
    store = ObjectStore.from_settings(settings)
    relay = OutboxRelay(db, runtime.broker)
    orthanc = OrthancClient.from_settings(settings)
    verifier = TokenVerifier(
        settings.oidc_issuer, settings.oidc_audience, leeway=settings.oidc_clock_skew_seconds
    )
    deps = ReportingDeps(
        settings=settings,
        repo=repo,
        store=store,
        relay=relay,
        orthanc=orthanc,
        verifier=verifier,
        reporting=Reporting(
            cases=repo,
            clock=SystemClock(),
            viewer_base_url=settings.viewer_base_url,
            drafts=repo,
            signatures=repo,
            keys=repo,
            studies=repo,
            outputs=ArchivePublisher(
                store, orthanc, settings.bucket_reports, settings.public_base_url
            ),
        ),
    )

    @runtime.broker.subscriber(topics.CASE_ASSIGNED, **subscriber_options("reporting"))
    async def on_case_assigned(event: CaseAssigned) -> None:
        await handlers.case_assigned(event, repo)

    @runtime.broker.subscriber(topics.ROSTER_CHANGED, **subscriber_options("reporting"))
    async def on_roster_changed(event: RosterChanged) -> None:
        await handlers.roster_changed(event, repo)

    async def open_db() -> None:
        await db.open()
        await migrate(db, MIGRATIONS)

    runtime.on_start.append(open_db)
    runtime.track_tasks(db)
    runtime.on_stop.extend([db.close, orthanc.aclose, verifier.aclose])
    runtime.background.append((relay.start, relay.stop))
    runtime.probes["postgres"] = db.ping
    runtime.probes["s3"] = lambda: store.ping(settings.bucket_reports)

    app = create_http_app(runtime, title="secondread reporting")
    archive = ArchiveDicomWeb.from_settings(settings)
    signin = OidcCodeFlow(settings.oidc_issuer, settings.web_client_id)
    runtime.on_stop.extend([archive.aclose, signin.aclose])
    mount_viewer(app, ViewerDeps(settings, verifier, deps.reporting, archive), signin)

    @app.exception_handler(ApiError)
    async def refused(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        body = error_body(exc.code, exc.message)
        if isinstance(exc, IncompleteReport):
            body["error"]["missing"] = exc.missing  # type: ignore[assignment]
        return JSONResponse(body, exc.status, headers=headers)

    @app.exception_handler(ArchiveUnavailable)
    async def archive_down(_request: Request, exc: ArchiveUnavailable) -> JSONResponse:
        return JSONResponse(error_body("archive_unavailable", f"{exc}; try again"), 503)

    app.state.deps = deps
    app.include_router(build_router())
    mount_pages(app, settings)
    return app
