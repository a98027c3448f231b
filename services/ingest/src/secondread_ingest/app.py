"""ingest composition root: settings -> clients -> broker -> ASGI app with probes."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from secondread_ingest.api import IngestDeps, build_router, error_response
from secondread_ingest.errors import InputRejected
from secondread_ingest.repository import MIGRATIONS, IngestRepository
from secondread_ingest.settings import IngestSettings
from secondread_shared.db import Database
from secondread_shared.outbox import OutboxRelay
from secondread_shared.service import build_runtime, create_http_app
from secondread_shared.storage import ObjectStore


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    runtime = build_runtime(settings, "ingest")
    db = Database(settings.db_dsn)
    store = ObjectStore.from_settings(settings)
    repo = IngestRepository(db)
    relay = OutboxRelay(db, runtime.broker, settings.outbox_poll_s)
    deps = IngestDeps(settings=settings, repo=repo, store=store, relay=relay)

    async def open_db() -> None:
        await db.open(MIGRATIONS)

    runtime.on_start.append(open_db)
    runtime.on_stop.append(db.close)
    runtime.probes["postgres"] = db.ping
    runtime.probes["s3"] = lambda: store.ping(settings.bucket_raw)

    runtime.background.append((relay.start, relay.stop))

    app = create_http_app(runtime, title="secondread ingest")

    @app.exception_handler(InputRejected)
    async def rejected(_request: Request, exc: InputRejected) -> JSONResponse:
        return error_response(exc)

    app.state.deps = deps
    app.include_router(build_router())
    return app
