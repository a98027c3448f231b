"""routing composition root."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from secondread_routing import handlers
from secondread_routing.archive import ArchiveStudies
from secondread_routing.ops.wiring import install as install_ops
from secondread_routing.repository import RoutingRepository
from secondread_routing.roster import RosterError, read_roster_file
from secondread_routing.rules import load_rules
from secondread_routing.service import Policy, RoutingService, import_roster
from secondread_routing.settings import RoutingSettings
from secondread_routing.timers import TimerLoop
from secondread_shared import topics
from secondread_shared.broker import subscriber_options
from secondread_shared.db import Database
from secondread_shared.events import (
    CaseAccepted,
    CaseDeclined,
    CaseDeidentified,
    ReportSigned,
    RosterChanged,
)
from secondread_shared.logging import get_logger
from secondread_shared.orthanc import OrthancClient
from secondread_shared.outbox import OutboxRelay
from secondread_shared.service import build_runtime, create_http_app

log = get_logger(__name__)


def policy_of(settings: RoutingSettings) -> Policy:
    return Policy(
        capacity=settings.capacity_policy,
        routine_due_hours=settings.routine_due_hours,
        urgent_due_hours=settings.urgent_due_hours,
        routine_accept_minutes=settings.routine_accept_minutes,
        urgent_accept_minutes=settings.urgent_accept_minutes,
        priors_lookback_days=settings.priors_lookback_days,
    )


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    settings = settings or RoutingSettings()
    rules = load_rules(settings.routing_rules)  # validated now: a bad file stops the start
    runtime = build_runtime(settings, "routing")
    db = Database(settings.db_dsn)
    broker = runtime.broker
    repo = RoutingRepository(db)
    orthanc = OrthancClient.from_settings(settings)
    service = RoutingService(
        rules=rules, repo=repo, archive=ArchiveStudies(orthanc), policy=policy_of(settings)
    )
    relay = OutboxRelay(db, broker)
    deps = handlers.RoutingDeps(service=service, wake=relay.wake)
    timers = TimerLoop(
        service,
        relay.wake,
        poll_s=settings.timer_poll_seconds,
        retry_s=settings.unassigned_retry_seconds,
    )
    options = subscriber_options("routing")

    @broker.subscriber(topics.CASE_DEIDENTIFIED, **options)
    async def on_case_deidentified(event: CaseDeidentified) -> None:
        await handlers.case_deidentified(event, deps)

    @broker.subscriber(topics.CASE_ACCEPTED, **options)
    async def on_case_accepted(event: CaseAccepted) -> None:
        await handlers.case_accepted(event, deps)

    @broker.subscriber(topics.CASE_DECLINED, **options)
    async def on_case_declined(event: CaseDeclined) -> None:
        await handlers.case_declined(event, deps)

    @broker.subscriber(topics.REPORT_SIGNED, **options)
    async def on_report_signed(event: ReportSigned) -> None:
        await handlers.report_signed(event, deps)

    @broker.subscriber(topics.ROSTER_CHANGED, **options)
    async def on_roster_changed(event: RosterChanged) -> None:
        await handlers.roster_changed(event, deps)

    async def open_db() -> None:
        await db.open()
        await repo.migrate()
        await seed_roster(repo, settings)

    runtime.on_start.append(open_db)
    runtime.track_tasks(db)
    runtime.on_stop.extend([db.close, orthanc.aclose])
    runtime.background.append((relay.start, relay.stop))
    runtime.background.append((timers.start, timers.stop))
    runtime.probes["postgres"] = db.ping
    app = create_http_app(runtime, title="secondread routing")
    install_ops(app, runtime, db, settings)  # the operations page and API (ops/wiring.py)
    return app


async def seed_roster(repo: RoutingRepository, settings: RoutingSettings) -> None:
    """A first start imports ``roster_path`` when the roster is empty; afterwards the roster
    changes only through ``secondread roster import``."""
    async with repo.unit() as unit:
        if await unit.readers():
            return
    if not settings.roster_path.exists():
        log.warning("roster_empty", path=str(settings.roster_path))
        return
    try:
        readers = read_roster_file(settings.roster_path, today=datetime.now(UTC).date())
    except RosterError as exc:
        log.error("roster_seed_refused", error=str(exc))
        raise
    await import_roster(repo, readers)
