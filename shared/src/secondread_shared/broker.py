"""Kafka broker factory: idempotent producer, explicit acks, dead letters, tracing, metrics.

Delivery semantics (ARCHITECTURE.md, "Cross-cutting rules"):

- the producer is idempotent with ``acks=all``;
- offsets are committed only after the handler returned (``AckPolicy.NACK_ON_ERROR``: on an
  exception the consumer seeks back, so nothing is committed past unfinished work);
- :class:`DeadLetterMiddleware` retries a failing message a bounded number of times, then
  publishes it to ``<topic>.dlq`` with the reason and its source topic, partition and offset in
  the headers, and lets the offset commit. If the dead letter itself cannot be written, the
  exception propagates and the message is redelivered: it is never dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from secondread_shared import topics
from secondread_shared.errors import PermanentError, TransientError
from secondread_shared.events import CaseState, CaseStatusChanged, Event
from secondread_shared.logging import bind_case, get_logger, unbind_case
from secondread_shared.tasks import TaskLog
from secondread_shared.tracing import CASE_ID_ATTRIBUTE

log = get_logger(__name__)

# Header names of a dead letter. Documented in docs/operations.md.
H_REASON = "x-secondread-dlq-reason"
H_ERROR = "x-secondread-dlq-error"
H_TOPIC = "x-secondread-dlq-source-topic"
H_PARTITION = "x-secondread-dlq-source-partition"
H_OFFSET = "x-secondread-dlq-source-offset"
H_ATTEMPTS = "x-secondread-dlq-attempts"
H_SERVICE = "x-secondread-dlq-service"
H_CASE = "x-secondread-case-id"

_REASON_LIMIT = 2000
MAX_POLL_INTERVAL_MS = 15 * 60 * 1000
"""The consumers' ``max_poll_interval_ms``: one message, with all its attempts, must be done
within it, or the consumer is evicted from its group and the message loops."""


def _is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, PermanentError | ValidationError | json.JSONDecodeError | UnicodeError)


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:_REASON_LIMIT]


OUTAGE_BACKOFF_CAP_S = 15.0
"""The longest wait between two attempts while a dependency is down."""


class HandlerTimeout(TimeoutError):
    """A handler ran past its time limit (retried like any transient error)."""


class DeadLetterPolicy:
    """Retry budget and where dead letters go, shared by every subscriber of one broker."""

    def __init__(
        self,
        *,
        service: str,
        max_attempts: int,
        backoff_s: float,
        registry: CollectorRegistry | None = None,
        handler_timeout_s: float = 240.0,
        outage_budget_s: float = 120.0,
    ) -> None:
        self.service = service
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.handler_timeout_s = handler_timeout_s
        self.outage_budget_s = outage_budget_s
        """A dependency that is down (a :class:`TransientError`: storage, Orthanc, the database)
        is waited for this long, past ``max_attempts``, before the message is dead-lettered."""
        worst = max(
            self.max_attempts * handler_timeout_s
            + sum(backoff_s * 2**i for i in range(self.max_attempts - 1)),
            outage_budget_s + handler_timeout_s,
        )
        if worst * 1000 >= MAX_POLL_INTERVAL_MS:
            raise ValueError(
                f"{self.max_attempts} attempts of up to {handler_timeout_s:g} s (with backoff,"
                f" {worst:g} s) do not fit in the consumer's max_poll_interval"
                f" ({MAX_POLL_INTERVAL_MS / 1000:g} s): lower SECONDREAD_HANDLER_TIMEOUT_S or"
                " SECONDREAD_MAX_ATTEMPTS"
            )
        self.broker: KafkaBroker | None = None
        self.task_log: TaskLog | None = None
        """Where each case's task record is kept (set by the service once its database is up)."""
        self.dead_letters = Counter(
            "secondread_dead_letters_total",
            "Messages sent to a dead-letter topic",
            ["source_topic"],
            registry=registry,
        )

    def middleware(self) -> Callable[..., BaseMiddleware]:
        """The middleware factory FastStream calls once per message."""

        def factory(msg: Any, /, *, context: Any) -> BaseMiddleware:
            return DeadLetterMiddleware(msg, context=context, policy=self)

        return factory


class DeadLetterMiddleware(BaseMiddleware):
    """Bounded retries, then a dead letter with its reason. See the module docstring."""

    def __init__(self, msg: Any, /, *, context: Any, policy: DeadLetterPolicy) -> None:
        super().__init__(msg, context=context)
        self.policy = policy

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        record = msg.raw_message
        source_topic: str = getattr(record, "topic", "") or ""
        key = getattr(record, "key", None)
        case_id = key.decode("utf-8", "replace") if isinstance(key, bytes) else ""
        if case_id:
            bind_case(case_id)
            trace.get_current_span().set_attribute(CASE_ID_ATTRIBUTE, case_id)
        try:
            return await self._with_retries(call_next, msg, source_topic, case_id)
        finally:
            unbind_case()

    async def _task(self, case_id: str, source_topic: str, state: str, **kw: Any) -> None:
        tasks = self.policy.task_log
        if tasks is None or not case_id or source_topic == topics.CASE_STATUS:
            return  # status consumers (dashboards, the ops view) are not a stage of the case
        stage = f"{self.policy.service}:{source_topic.removeprefix('secondread.')}"
        await tasks.record(case_id, stage, state, **kw)

    async def _with_retries(
        self, call_next: Any, msg: StreamMessage[Any], source_topic: str, case_id: str
    ) -> Any:
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            await self._task(case_id, source_topic, "running", attempts=attempt)
            try:
                async with asyncio.timeout(self.policy.handler_timeout_s):
                    result = await call_next(msg)
                await self._task(case_id, source_topic, "done", attempts=attempt)
                return result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, TimeoutError):
                    exc = HandlerTimeout(
                        f"the handler took longer than {self.policy.handler_timeout_s:g} s"
                    )
                if source_topic.endswith(topics.DLQ_SUFFIX):
                    raise  # a dead letter is never dead-lettered again
                permanent = _is_permanent(exc)
                delay = min(self.policy.backoff_s * 2 ** (attempt - 1), OUTAGE_BACKOFF_CAP_S)
                outage = isinstance(exc, TransientError) and (
                    time.monotonic() - started + delay <= self.policy.outage_budget_s
                )
                if not permanent and (attempt < self.policy.max_attempts or outage):
                    log.warning(
                        "handler_failed_retrying",
                        topic=source_topic,
                        attempt=attempt,
                        error=type(exc).__name__,
                    )
                    await self._task(case_id, source_topic, "retrying", attempts=attempt,
                                     error=_reason(exc), retry_in_s=delay)  # fmt: skip
                    await asyncio.sleep(delay)
                    continue
                await self._dead_letter(msg, source_topic, case_id, exc, attempt)
                await self._task(case_id, source_topic, "dead_lettered", attempts=attempt,
                                 error=_reason(exc))  # fmt: skip
                return None

    async def _dead_letter(
        self,
        msg: StreamMessage[Any],
        source_topic: str,
        case_id: str,
        exc: BaseException,
        attempts: int,
    ) -> None:
        broker = self.policy.broker
        if broker is None:  # pragma: no cover - wiring error
            raise RuntimeError("DeadLetterPolicy.broker is not set")
        record = msg.raw_message
        reason = _reason(exc)
        headers = {
            k: v for k, v in (msg.headers or {}).items() if not k.startswith("x-secondread-dlq-")
        }
        headers.update(
            {
                H_REASON: reason,
                H_ERROR: "".join(traceback.format_exception_only(exc)).strip()[:_REASON_LIMIT],
                H_TOPIC: source_topic,
                H_PARTITION: str(getattr(record, "partition", "")),
                H_OFFSET: str(getattr(record, "offset", "")),
                H_ATTEMPTS: str(attempts),
                H_SERVICE: self.policy.service,
                H_CASE: case_id,
            }
        )
        key = getattr(record, "key", None)
        await broker.publish(
            msg.body,
            topic=topics.dlq(source_topic),
            key=key,
            headers=headers,
        )
        self.policy.dead_letters.labels(source_topic=source_topic).inc()
        log.error(
            "dead_lettered",
            topic=source_topic,
            partition=headers[H_PARTITION],
            offset=headers[H_OFFSET],
            attempts=attempts,
            reason=type(exc).__name__,
        )
        if case_id and source_topic != topics.CASE_STATUS:
            status = CaseStatusChanged(
                case_id=case_id,
                producer=self.policy.service,
                state=CaseState.DEAD_LETTERED,
                detail=f"{source_topic}: {type(exc).__name__}",
            )
            await publish_event(broker, status)


def create_broker(
    *,
    service: str,
    bootstrap: str,
    tracer_provider: TracerProvider | None,
    registry: CollectorRegistry | None,
    max_attempts: int = 3,
    backoff_s: float = 0.5,
    handler_timeout_s: float = 240.0,
    graceful_timeout_s: float = 15.0,
    outage_budget_s: float = 120.0,
) -> tuple[KafkaBroker, DeadLetterPolicy]:
    """Build a Kafka broker with the platform's delivery semantics.

    Parameters
    ----------
    service
        Service name, used as client id and in dead-letter headers.
    bootstrap
        ``host:port`` list of Kafka bootstrap servers.
    tracer_provider
        Where FastStream's telemetry middleware creates spans (W3C context in headers).
    registry
        Prometheus registry for FastStream's metrics and the dead-letter counter.
    graceful_timeout_s
        On stop, how long the messages being handled get to finish (and be committed).

    Returns
    -------
    The broker and its dead-letter policy. Register subscribers with
    :func:`subscribe_kwargs` so each uses the explicit ack policy and a consumer group.

    Notes
    -----
    Producer settings follow the Kafka producer docs: ``enable.idempotence=true`` implies
    ``acks=all``; both are set explicitly.
    """
    policy = DeadLetterPolicy(
        service=service,
        max_attempts=max_attempts,
        backoff_s=backoff_s,
        registry=registry,
        handler_timeout_s=handler_timeout_s,
        outage_budget_s=outage_budget_s,
    )
    middlewares: list[Any] = [KafkaTelemetryMiddleware(tracer_provider=tracer_provider)]
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=service))
    middlewares.append(policy.middleware())
    broker = KafkaBroker(
        bootstrap,
        client_id=f"secondread-{service}",
        acks="all",
        enable_idempotence=True,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        middlewares=middlewares,
        graceful_timeout=graceful_timeout_s,
        # FastStream's own logger has a plain-text handler; ours goes through structlog JSON.
        logger=logging.getLogger(f"secondread.{service}.faststream"),
    )
    policy.broker = broker
    return broker, policy


def group_id(service: str) -> str:
    """The consumer group of ``service``: one per service, so each service sees every event."""
    return f"secondread-{service}"


async def publish_event(broker: KafkaBroker, event: Event, *, topic: str | None = None) -> None:
    """Publish ``event`` on its topic, keyed by case id (claim-check: no images in Kafka)."""
    await broker.publish(
        event,
        topic=topic or event.TOPIC,
        key=event.case_id.encode(),
        headers={"x-secondread-event-type": event.event_type},
    )


def subscriber_options(service: str) -> dict[str, Any]:
    """Keyword arguments every subscriber of ``service`` uses.

    One consumer group per service; a new group starts from the earliest offset so that nothing
    published before the service first started is missed. ``max_poll_interval_ms`` is generous
    because one message may be a whole study.
    """
    return {
        "group_id": group_id(service),
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": MAX_POLL_INTERVAL_MS,
    }
