"""ingest composition root: settings -> clients -> desk, SCP -> ASGI app with probes."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from secondread_ingest import portal
from secondread_ingest.api import build_router, error_response
from secondread_ingest.desk import CaseDesk
from secondread_ingest.dimse import StorageSCP
from secondread_ingest.errors import InputRejected
from secondread_ingest.limits import BodyLimit
from secondread_ingest.pacs import DimsePacs
from secondread_ingest.repository import MIGRATIONS, IngestRepository
from secondread_ingest.service import IngestDeps
from secondread_ingest.settings import IngestSettings
from secondread_ingest.spool import Spool
from secondread_shared.db import Database
from secondread_shared.dicom import configure_pydicom
from secondread_shared.outbox import OutboxRelay
from secondread_shared.service import build_runtime, create_http_app
from secondread_shared.storage import ObjectStore


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    runtime = build_runtime(settings, "ingest")
    configure_pydicom()  # no value validation, no warnings quoting PHI
    # pynetdicom logs every DIMSE message at INFO: too much for a feed, and slow.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    db = Database(settings.db_dsn, max_size=max(8, settings.spool_workers + 4))
    store = ObjectStore.from_settings(settings)
    repo = IngestRepository(db)
    relay = OutboxRelay(db, runtime.broker, settings.outbox_poll_s)
    spool = Spool(settings.spool_path)
    desk = CaseDesk(
        settings=settings,
        repo=repo,
        store=store,
        spool=spool,
        pacs=DimsePacs(settings.dicom_aet, timeout_s=settings.dicom_timeout_s),
        wake_relay=relay.wake,
    )
    aet_to_hospital = {
        aet: hospital_id for hospital_id, cfg in settings.hospitals.items() for aet in cfg.ae_titles
    }
    scp = StorageSCP(
        host=settings.dicom_host,
        port=settings.dicom_port,
        ae_title=settings.dicom_aet,
        aet_to_hospital=aet_to_hospital,
        receive=desk.receive_dimse
        if settings.dicom_durability == "spool"
        else desk.receive_dimse_stored,
        max_pdu=settings.dicom_max_pdu,
        timeout_s=settings.dicom_timeout_s,
    )
    deps = IngestDeps(settings=settings, repo=repo, store=store, desk=desk)

    async def open_db() -> None:
        await db.open(MIGRATIONS)
        spool.open()

    async def start_scp() -> None:
        await asyncio.to_thread(scp.start)

    async def stop_scp() -> None:
        await asyncio.to_thread(scp.stop)

    async def scp_running() -> bool:
        return scp.running

    runtime.on_start.append(open_db)
    runtime.track_tasks(db)
    runtime.on_stop.append(db.close)
    runtime.probes["postgres"] = db.ping
    runtime.probes["s3"] = lambda: store.ping(settings.bucket_raw)

    runtime.background.append((relay.start, relay.stop))
    runtime.background.append((desk.start, desk.stop))
    if settings.dicom_enabled:
        runtime.probes["dicom"] = scp_running
        runtime.background.append((start_scp, stop_scp))  # started last, stopped first

    app = create_http_app(runtime, title="secondread ingest")

    @app.exception_handler(InputRejected)
    async def rejected(_request: Request, exc: InputRejected) -> JSONResponse:
        return error_response(exc)

    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.state.deps = deps
    app.include_router(build_router())
    portal.install(app, runtime, settings, deps, db)
    return app
