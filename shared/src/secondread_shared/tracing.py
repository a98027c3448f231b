"""OpenTelemetry setup: OTLP/gRPC export to the trace store (Jaeger in the local stack).

W3C trace context travels in Kafka headers through FastStream's ``KafkaTelemetryMiddleware``.
Every span carries ``secondread.case_id`` (:data:`CASE_ID_ATTRIBUTE`).
"""

from __future__ import annotations

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

CASE_ID_ATTRIBUTE = "secondread.case_id"


class CaseIdSpanProcessor(SpanProcessor):
    """Stamps ``secondread.case_id`` on every span started while a case is bound.

    The case is bound with :func:`secondread_shared.logging.bind_case`, which also puts it on
    every log line, so spans and logs always agree.
    """

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        case_id = structlog.contextvars.get_contextvars().get("case_id")
        if case_id:
            span.set_attribute(CASE_ID_ATTRIBUTE, str(case_id))


def setup_tracing(service: str, endpoint: str, *, enabled: bool = True) -> TracerProvider:
    """Create the process's tracer provider and make it global.

    Parameters
    ----------
    service
        ``service.name`` resource attribute, e.g. ``"secondread-ingest"``.
    endpoint
        OTLP/gRPC endpoint, e.g. ``"http://127.0.0.1:4317"``.
    enabled
        When false, spans are created (ids appear in logs) but not exported.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(CaseIdSpanProcessor())
    if enabled:
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    return provider


def tag_case(case_id: str) -> None:
    """Set ``secondread.case_id`` on the current span."""
    trace.get_current_span().set_attribute(CASE_ID_ATTRIBUTE, case_id)
