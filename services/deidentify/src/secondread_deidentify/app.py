"""deidentify composition root."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from secondread_deidentify import handlers
from secondread_deidentify.engine import Engine
from secondread_deidentify.phi import detector
from secondread_deidentify.settings import DeidentifySettings
from secondread_deidentify.vault import MIGRATIONS, Vault
from secondread_shared import topics
from secondread_shared.broker import publish_event, subscriber_options
from secondread_shared.db import Database
from secondread_shared.dicom import configure_pydicom
from secondread_shared.events import CaseAmended, CaseReceived, Event
from secondread_shared.orthanc import OrthancClient
from secondread_shared.secrets import fernet_from_key, load_key
from secondread_shared.service import build_runtime, create_http_app
from secondread_shared.storage import ObjectStore


def create_app(settings: DeidentifySettings | None = None) -> FastAPI:
    settings = settings or DeidentifySettings()
    runtime = build_runtime(settings, "deidentify")
    configure_pydicom()  # no value validation, no warnings quoting PHI
    secrets_dir = settings.stack_dir / "secrets"
    key = load_key(
        "pseudonym_key",
        settings.pseudonym_key,
        settings.pseudonym_key_file,
        local_path=secrets_dir / "pseudonym.key",
        environment=settings.environment,
    )
    vault_key = load_key(
        "vault_key",
        settings.vault_key,
        settings.vault_key_file,
        local_path=secrets_dir / "vault.key",
        environment=settings.environment,
    )
    db = Database(settings.db_dsn)
    store = ObjectStore.from_settings(settings)
    orthanc = OrthancClient.from_settings(settings)
    broker = runtime.broker

    async def publish(event: Event) -> None:
        await publish_event(broker, event)

    deps = handlers.DeidentifyDeps(
        settings=settings,
        key=key,
        store=store,
        orthanc=orthanc,
        vault=Vault(db, fernet_from_key(vault_key)),
        publish=publish,
        engine=Engine(key),
    )

    @broker.subscriber(topics.CASE_RECEIVED, **subscriber_options("deidentify"))
    async def on_case_received(event: CaseReceived) -> None:
        await handlers.case_received(event, deps)

    @broker.subscriber(topics.CASE_AMENDED, **subscriber_options("deidentify"))
    async def on_case_amended(event: CaseAmended) -> None:
        await handlers.case_amended(event, deps)

    async def open_db() -> None:
        await db.open(MIGRATIONS)

    async def load_detector() -> None:
        # The free-text PHI detector reads its data once (about a second): at start-up, not
        # in the first case.
        await asyncio.to_thread(detector)

    runtime.on_start.extend([open_db, load_detector])
    runtime.track_tasks(db)
    runtime.on_stop.extend([db.close, orthanc.aclose])
    runtime.probes["postgres"] = db.ping
    runtime.probes["s3"] = lambda: store.ping(settings.bucket_clear)

    async def orthanc_ready() -> bool:
        await orthanc.system()
        return True

    runtime.probes["orthanc"] = orthanc_ready
    return create_http_app(runtime, title="secondread deidentify")
