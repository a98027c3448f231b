"""Adds the operations page to routing: called once by routing's composition root
(:func:`secondread_routing.app.create_app`), before the app starts.

Consumers (routing's consumer group, so each event is applied by one replica; a redelivery or a
rebalance applies it again harmlessly):

- ``secondread.case.status.v1`` into the status view;
- every ``<topic>.dlq`` into the dead-letter index (headers and position only).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from faststream.kafka.annotations import KafkaMessage

from secondread_routing.ops import handlers
from secondread_routing.ops.api import OpsDeps, PageConfig, mount
from secondread_routing.ops.bus import KafkaLetterBus
from secondread_routing.ops.domain import Policy
from secondread_routing.ops.repository import OpsRepository
from secondread_routing.ops.service import OpsService, SystemClock
from secondread_routing.settings import RoutingSettings
from secondread_shared import topics
from secondread_shared.broker import subscriber_options
from secondread_shared.db import Database
from secondread_shared.deadletters import DLQ_TOPICS
from secondread_shared.oidc import TokenVerifier
from secondread_shared.records import record_of
from secondread_shared.service import Runtime


def install(app: FastAPI, runtime: Runtime, db: Database, settings: RoutingSettings) -> OpsService:
    repo = OpsRepository(db)
    service = OpsService(
        view=repo,
        letters=repo,
        ledger=repo,
        bus=KafkaLetterBus(settings.kafka_bootstrap),
        clock=SystemClock(),
        policy=Policy(
            stuck_after=timedelta(minutes=settings.ops_stuck_minutes),
            at_risk_within=timedelta(hours=settings.ops_at_risk_hours),
        ),
    )
    verifier = TokenVerifier(
        settings.oidc_issuer, settings.oidc_audience, leeway=settings.oidc_clock_skew_seconds
    )
    runtime.on_stop.append(verifier.aclose)
    options = subscriber_options("routing")

    async def on_case_status(msg: KafkaMessage) -> None:
        await handlers.status_changed(record_of(msg.raw_message), service)

    async def on_dead_letter(msg: KafkaMessage) -> None:
        await handlers.dead_lettered(record_of(msg.raw_message), service)

    # (called, not used as decorators: FastStream's decorator is untyped)
    runtime.broker.subscriber(
        topics.CASE_STATUS,
        title="case.status:routing-ops",
        description="The operations page's status view (read leniently: unknown states kept).",
        **options,
    )(on_case_status)
    runtime.broker.subscriber(
        *DLQ_TOPICS,
        title="dead-letters:routing-ops",
        description="The operations page's dead-letter index: headers only, never the payload.",
        **options,
    )(on_dead_letter)

    app.state.ops = OpsDeps(
        service=service,
        verifier=verifier,
        page=PageConfig(
            issuer=settings.oidc_issuer,
            client_id=settings.web_client_id,
            refresh_seconds=settings.ops_refresh_seconds,
            stuck_minutes=settings.ops_stuck_minutes,
            at_risk_hours=settings.ops_at_risk_hours,
            keycloak_js=settings.web_packages_dir / "keycloak-js" / "lib" / "keycloak.js",
        ),
    )

    mount(app)
    return service
