"""The AsyncAPI document of the platform, generated from the code.

Subscribers come from each service's real broker (its ``@broker.subscriber`` registrations);
publishers are declared here, from :data:`PRODUCES`, on the same broker, so FastStream's
AsyncAPI generator sees both sides of every topic with the pydantic models as message schemas.
"""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from secondread_shared.events import (
    CaseAmended,
    CaseAssigned,
    CaseDeidentified,
    CaseReceived,
    CaseStatusChanged,
    Event,
    NotificationDelivered,
    NotificationFailed,
    ReportSigned,
)

PRODUCES: dict[str, tuple[type[Event], ...]] = {
    "ingest": (CaseReceived, CaseAmended, CaseStatusChanged),
    "deidentify": (CaseDeidentified, CaseStatusChanged),
    "routing": (CaseAssigned, CaseStatusChanged),
    "reporting": (ReportSigned, CaseStatusChanged),
    "notify": (NotificationDelivered, NotificationFailed, CaseStatusChanged),
}
"""What each service publishes (every service also publishes dead letters and status)."""


def declare_publishers(broker: KafkaBroker, service: str) -> None:
    """Declare ``service``'s publishers on its broker, for the specification only."""
    for cls in PRODUCES.get(service, ()):
        broker.publisher(
            cls.TOPIC,
            schema=cls,
            title=f"{cls.TOPIC}:{service}",
            description=(cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else None,
        )


def specification(brokers: list[KafkaBroker], *, version: str) -> dict[str, Any]:
    """One AsyncAPI 3.0 document for every service's broker."""
    spec = AsyncAPI(
        *brokers,
        title="secondread events",
        version=version,
        description=(
            "Kafka topics of secondread. Every message is keyed by case id and carries the "
            "envelope event_id, event_type, schema_version, occurred_at, case_id, causation_id, "
            "producer. Topics under secondread.phi.* carry PHI; every other topic is clear-zone. "
            "Each topic has a dead-letter twin <topic>.dlq."
        ),
    )
    doc: dict[str, Any] = spec.to_specification().to_jsonable()
    return doc
