"""notify composition root."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
from fastapi import FastAPI

from secondread_notify import handlers
from secondread_notify.repository import MIGRATIONS, NotifyRepository
from secondread_notify.service import DeliveryWorker, channel_senders
from secondread_notify.settings import NotifySettings
from secondread_shared import topics
from secondread_shared.broker import subscriber_options
from secondread_shared.db import Database
from secondread_shared.events import CaseReceived, ReportSigned
from secondread_shared.outbox import OutboxRelay
from secondread_shared.service import build_runtime, create_http_app
from secondread_shared.storage import ObjectStore


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    runtime = build_runtime(settings, "notify")
    db = Database(settings.db_dsn)
    repo = NotifyRepository(db)
    store = ObjectStore.from_settings(settings)
    relay = OutboxRelay(db, runtime.broker)

    async def send_mail(message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.smtp_timeout_s,
            start_tls=settings.smtp_starttls,
            username=settings.smtp_username or None,
            password=settings.smtp_password.get_secret_value() or None,
        )

    deps = handlers.NotifyDeps(
        settings=settings,
        repo=repo,
        store=store,
        senders=channel_senders(settings, send_mail),
        wake_outbox=relay.wake,
    )
    worker = DeliveryWorker(deps, poll_s=settings.delivery_poll_s)
    deps.wake_worker = worker.wake
    broker = runtime.broker
    options = subscriber_options("notify")

    @broker.subscriber(topics.CASE_RECEIVED, **options)
    async def on_case_received_keep_contacts(event: CaseReceived) -> None:
        await handlers.case_received(event, repo)
        worker.wake()  # a signed report may be waiting for these contacts

    @broker.subscriber(topics.REPORT_SIGNED, **options)
    async def on_report_signed(event: ReportSigned) -> None:
        await handlers.report_signed(event, deps)

    async def open_db() -> None:
        await db.open(MIGRATIONS)

    async def smtp_ready() -> bool:
        smtp = aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port, timeout=2)
        await smtp.connect()
        await smtp.quit()
        return True

    runtime.on_start.append(open_db)
    runtime.track_tasks(db)
    runtime.on_stop.append(db.close)
    runtime.background.extend([(relay.start, relay.stop), (worker.start, worker.stop)])
    runtime.probes["postgres"] = db.ping
    runtime.probes["smtp"] = smtp_ready
    return create_http_app(runtime, title="secondread notify")
