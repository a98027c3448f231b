"""Kafka topic names: the only place a topic string is spelled.

Every topic has a dead-letter twin, ``<topic>.dlq``. Topics under ``secondread.phi.`` carry
protected health information and are fenced by Kafka ACLs on that prefix; every other topic is
clear-zone and must never carry PHI.
"""

from __future__ import annotations

from dataclasses import dataclass

PHI_PREFIX = "secondread.phi."
DLQ_SUFFIX = ".dlq"

CASE_RECEIVED = "secondread.phi.case.received.v1"
CASE_AMENDED = "secondread.phi.case.amended.v1"
CASE_DEIDENTIFIED = "secondread.case.deidentified.v1"
CASE_ASSIGNED = "secondread.case.assigned.v1"
REPORT_SIGNED = "secondread.report.signed.v1"
NOTIFICATION_DELIVERED = "secondread.notification.delivered.v1"
NOTIFICATION_FAILED = "secondread.notification.failed.v1"
CASE_STATUS = "secondread.case.status.v1"
CASE_ACCEPTED = "secondread.case.accepted.v1"
CASE_DECLINED = "secondread.case.declined.v1"
ROSTER_CHANGED = "secondread.roster.changed.v1"

EVENT_TOPICS: tuple[str, ...] = (
    CASE_RECEIVED,
    CASE_AMENDED,
    CASE_DEIDENTIFIED,
    CASE_ASSIGNED,
    REPORT_SIGNED,
    NOTIFICATION_DELIVERED,
    NOTIFICATION_FAILED,
    CASE_STATUS,
    CASE_ACCEPTED,
    CASE_DECLINED,
    ROSTER_CHANGED,
)

DEFAULT_PARTITIONS = 3


def dlq(topic: str) -> str:
    """Return the dead-letter twin of ``topic``."""
    return topic + DLQ_SUFFIX


def is_phi(topic: str) -> bool:
    """Whether ``topic`` belongs to the PHI zone (its DLQ twin included)."""
    return topic.startswith(PHI_PREFIX)


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is created: name, partitions and topic-level configs."""

    name: str
    partitions: int
    configs: dict[str, str]


def topic_specs(partitions: int = DEFAULT_PARTITIONS) -> list[TopicSpec]:
    """Every topic the platform needs, DLQ twins included.

    ``secondread.case.status.v1`` is compacted and keyed by case id (Kafka ``cleanup.policy``);
    its dead letters are kept like any other DLQ (delete policy, long retention).
    """
    specs: list[TopicSpec] = []
    for name in EVENT_TOPICS:
        configs = {"cleanup.policy": "compact"} if name == CASE_STATUS else {}
        specs.append(TopicSpec(name, partitions, configs))
        specs.append(TopicSpec(dlq(name), partitions, {"retention.ms": str(30 * 24 * 3600 * 1000)}))
    return specs
