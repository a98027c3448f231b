"""What every service's composition root shares: runtime wiring and the HTTP probes.

``/health`` answers while the process runs; ``/ready`` answers 200 only when Kafka and every
registered dependency answer; ``/metrics`` is the Prometheus text format.

Every route's OpenAPI entry declares the refusals (:data:`REFUSALS`) with the one error body
(:class:`ErrorBody`), and the refusals FastAPI makes itself use that body too: a request it
cannot validate (422, naming each parameter or field), a body that is not JSON (400), an unknown
path (404), never FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream._internal.endpoint.subscriber.utils import MultiLock
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from secondread_shared import tasks
from secondread_shared.asyncapi import declare_publishers
from secondread_shared.broker import DeadLetterPolicy, create_broker
from secondread_shared.db import Database
from secondread_shared.errors import error_body
from secondread_shared.logging import configure_logging, get_logger
from secondread_shared.settings import CommonSettings
from secondread_shared.tracing import setup_tracing

log = get_logger(__name__)

Probe = Callable[[], Awaitable[bool]]
Hook = Callable[[], Awaitable[None]]


class ErrorDetail(BaseModel):
    code: str
    """Stable and machine-readable, e.g. ``not_found``."""
    message: str
    """What was wrong, for a person."""


class ErrorBody(BaseModel):
    """The schema of :func:`secondread_shared.errors.error_body`, for the OpenAPI documents
    (here, not in ``errors``: the ``secondread deid`` executable imports no pydantic)."""

    error: ErrorDetail


REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "bad request (the message names what is wrong)"),
        (401, "no valid credentials"),
        (403, "not allowed for this user or hospital"),
        (404, "no such object (or not yours)"),
        (409, "conflicts with the object's state"),
        (413, "too large"),
        (415, "wrong media type"),
        (422, "invalid input (the message names each parameter or field)"),
    )
}
"""The refusals any route may answer with, each with the body of
:func:`secondread_shared.errors.error_body` (declared once for every route of every service)."""


HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "wrong_content_type",
    422: "invalid",
}  # fmt: skip
"""The error code of a refusal FastAPI or Starlette raise themselves (``HTTPException``: an
unknown path, a body that is not JSON, ...)."""


def http_refusal(exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI's and Starlette's own refusals in the one error body."""
    code = HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers)


def validation_refusal(exc: RequestValidationError) -> JSONResponse:
    """422 with the error body naming each invalid parameter or field."""
    problems = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ())]
        where = f"{loc[0]} {'.'.join(loc[1:])!r}" if len(loc) > 1 else ".".join(loc)
        problems.append(f"{where}: {e.get('msg', 'invalid')}")
    return JSONResponse(error_body("invalid", "; ".join(problems) or "invalid request"), 422)


@dataclass
class Runtime:
    """The process-wide pieces every service needs, built once in ``app.py``."""

    settings: CommonSettings
    service: str
    tracer_provider: TracerProvider
    registry: CollectorRegistry
    broker: KafkaBroker
    dead_letters: DeadLetterPolicy
    probes: dict[str, Probe] = field(default_factory=dict)
    on_start: list[Hook] = field(default_factory=list)
    """Run before the broker starts (open databases, clients)."""
    on_stop: list[Hook] = field(default_factory=list)
    """Run after the broker stopped, in reverse order."""
    background: list[tuple[Hook, Hook]] = field(default_factory=list)
    """``(start, stop)`` pairs run after the broker started and stopped before it stops."""
    stopping: bool = False
    """Set on SIGTERM/SIGINT: ``/ready`` answers 503 from then on (see :func:`serve`)."""

    def track_tasks(self, db: Database) -> None:
        """Keep each case's task record (:mod:`secondread_shared.tasks`) in ``db``; call after
        the hook that opens ``db`` is registered."""

        async def start() -> None:
            async with db.transaction() as conn:
                for statement in tasks.MIGRATIONS:
                    await conn.execute(statement.encode())
            self.dead_letters.task_log = tasks.TaskLog(db)

        self.on_start.append(start)


def build_runtime(settings: CommonSettings, service: str) -> Runtime:
    """Configure logging and tracing, and create the broker, for ``service``."""
    configure_logging(service, settings.log_level)
    provider = setup_tracing(
        f"secondread-{service}", settings.otlp_endpoint, enabled=settings.tracing_enabled
    )
    registry = CollectorRegistry()
    broker, policy = create_broker(
        service=service,
        bootstrap=settings.kafka_bootstrap,
        tracer_provider=provider,
        registry=registry,
        max_attempts=settings.max_attempts,
        backoff_s=settings.retry_backoff_s,
        handler_timeout_s=settings.handler_timeout_s,
        graceful_timeout_s=settings.shutdown_grace_s,
        outage_budget_s=settings.outage_budget_s,
    )
    return Runtime(settings, service, provider, registry, broker, policy)


def create_http_app(runtime: Runtime, *, title: str, start_broker: bool = True) -> FastAPI:
    """A FastAPI app with the probes, whose lifespan starts and stops the runtime.

    Start order: ``on_start`` hooks (databases, clients), then the broker (subscribers begin to
    consume only when their dependencies are up). Stop order is the reverse; spans are flushed last.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.callback(runtime.tracer_provider.shutdown)  # last: flush every span
            for hook in runtime.on_start:
                await hook()
            for hook in runtime.on_stop:
                stack.push_async_callback(hook)
            if start_broker:
                await runtime.broker.start()
                stack.push_async_callback(runtime.broker.stop)
            for start, stop in runtime.background:
                await start()
                stack.push_async_callback(stop)
            if start_broker:
                # First at stop: no new messages; those being handled finish and are committed
                # (within the broker's graceful timeout), then the background loops drain what
                # the handlers wrote (the outbox), then the producer closes.
                stack.push_async_callback(
                    _stop_consuming, runtime.broker, runtime.settings.shutdown_grace_s
                )
            log.info("service_started", port=runtime.settings.http_port)
            yield
            runtime.stopping = True
            log.info("service_stopping", grace_s=runtime.settings.shutdown_grace_s)
        log.info("service_stopped")

    declare_publishers(runtime.broker, runtime.service)
    app = FastAPI(title=title, lifespan=lifespan, responses=REFUSALS)
    app.state.runtime = runtime

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_refusal(exc)

    @app.exception_handler(StarletteHTTPException)
    async def refused(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_refusal(exc)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": runtime.service}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        if runtime.stopping:
            return JSONResponse({"status": "stopping", "checks": {}}, status_code=503)
        checks: dict[str, Probe] = {"kafka": lambda: runtime.broker.ping(timeout=2.0)}
        checks.update(runtime.probes)
        names = list(checks)
        results = await asyncio.gather(*(_safe(checks[n]) for n in names))
        status = dict(zip(names, results, strict=True))
        ok = all(results)
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": status},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def _stop_consuming(broker: KafkaBroker, grace_s: float) -> None:
    """Stop reading on every subscriber and let the messages in flight finish and commit, and
    only then leave the consumer group.

    The subscribers of one service share a consumer group: one leaving first would rebalance
    the group, reset the other consumers' positions to their last commit, and so undo the
    commit of a message that finishes afterwards (it would be handled again after the restart).
    """
    subscribers = list(broker.subscribers)
    for subscriber in subscribers:
        subscriber.running = False  # no new message is read
    waits = [
        lock.wait_release(grace_s)
        for lock in (getattr(s, "lock", None) for s in subscribers)
        if isinstance(lock, MultiLock)
    ]
    await asyncio.gather(*waits)
    for subscriber in subscribers:
        await subscriber.stop()


async def _safe(probe: Probe) -> bool:
    try:
        return bool(await asyncio.wait_for(probe(), timeout=3.0))
    except Exception:
        return False


class _Server(uvicorn.Server):
    """uvicorn, marking the runtime unready the moment a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime | None) -> None:
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.runtime is not None and not self.runtime.stopping:
            self.runtime.stopping = True
            log.info("stop_signal", signal=sig)
        super().handle_exit(sig, frame)


def serve(app: Any, settings: CommonSettings) -> None:
    """Run ``app`` under uvicorn on the service's host and port, logging through structlog.

    SIGTERM (what Kubernetes and ``secondread down`` send): the service is unready at once,
    stops accepting connections, lets requests in flight finish, then stops consuming, lets the
    messages being handled finish and commits them (FastStream's graceful timeout), stops its
    background workers and exits, all within ``shutdown_grace_s`` for each of the two phases.
    A message cut off past the grace is not committed, so it is handled again after the
    restart (every handler is idempotent).
    """
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    _Server(config, runtime).run()
