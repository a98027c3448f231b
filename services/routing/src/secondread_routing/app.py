"""routing composition root."""

from __future__ import annotations

from fastapi import FastAPI

from secondread_routing import handlers
from secondread_routing.archive import ArchiveStudies
from secondread_routing.repository import MIGRATIONS, RoutingRepository
from secondread_routing.roster import load_roster
from secondread_routing.settings import RoutingSettings
from secondread_shared import topics
from secondread_shared.broker import publish_event, subscriber_options
from secondread_shared.db import Database
from secondread_shared.events import CaseDeidentified, Event
from secondread_shared.orthanc import OrthancClient
from secondread_shared.service import build_runtime, create_http_app


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    settings = settings or RoutingSettings()
    runtime = build_runtime(settings, "routing")
    roster = load_roster(settings.roster_path)
    db = Database(settings.db_dsn)
    broker = runtime.broker

    async def publish(event: Event) -> None:
        await publish_event(broker, event)

    orthanc = OrthancClient.from_settings(settings)
    deps = handlers.RoutingDeps(
        settings=settings,
        roster=roster,
        repo=RoutingRepository(db),
        publish=publish,
        archive=ArchiveStudies(orthanc),
    )

    @broker.subscriber(topics.CASE_DEIDENTIFIED, **subscriber_options("routing"))
    async def on_case_deidentified(event: CaseDeidentified) -> None:
        await handlers.case_deidentified(event, deps)

    async def open_db() -> None:
        await db.open(MIGRATIONS)

    runtime.on_start.append(open_db)
    runtime.on_stop.extend([db.close, orthanc.aclose])
    runtime.probes["postgres"] = db.ping
    return create_http_app(runtime, title="secondread routing")
