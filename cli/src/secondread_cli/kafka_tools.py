"""Operator views over Kafka: case states, status events, dead letters and their replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from secondread_shared import broker as br
from secondread_shared import topics

DLQ_TOPICS = tuple(topics.dlq(t) for t in topics.EVENT_TOPICS)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: str
    value: bytes
    headers: dict[str, str]


async def read_all(
    bootstrap: str, topic_names: tuple[str, ...] | list[str], keep: Callable[[Record], bool]
) -> list[Record]:
    """Every record of ``topic_names`` from the beginning to the current end that ``keep`` keeps."""
    consumer = AIOKafkaConsumer(
        *topic_names,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(t, p)
            for t in topic_names
            for p in consumer.partitions_for_topic(t) or []
        ]
        end = await consumer.end_offsets(parts)
        out: list[Record] = []

        async def behind() -> bool:
            return any([await consumer.position(p) < end[p] for p in parts])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    rec = Record(
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.offset,
                        timestamp=datetime.fromtimestamp(r.timestamp / 1000, UTC),
                        key=(r.key or b"").decode("utf-8", "replace"),
                        value=r.value or b"",
                        headers={k: v.decode("utf-8", "replace") for k, v in r.headers},
                    )
                    if keep(rec):
                        out.append(rec)
        return sorted(out, key=lambda r: r.timestamp)
    finally:
        await consumer.stop()


async def case_states(bootstrap: str) -> dict[str, dict[str, Any]]:
    """The latest status event of every case (the compacted status topic's view)."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in await read_all(bootstrap, [topics.CASE_STATUS], lambda r: True):
        try:
            latest[rec.key] = json.loads(rec.value)
        except ValueError:
            continue
    return latest


async def status_events(bootstrap: str, case_id: str) -> list[dict[str, Any]]:
    """Every status event of one case, oldest first."""
    recs = await read_all(bootstrap, [topics.CASE_STATUS], lambda r: r.key == case_id)
    return [json.loads(r.value) for r in recs]


async def dead_letters(bootstrap: str, topic: str | None = None) -> list[Record]:
    """Dead letters on every ``.dlq`` topic, or on the twin of ``topic``."""
    names = [topics.dlq(topic)] if topic else list(DLQ_TOPICS)
    return await read_all(bootstrap, names, lambda r: True)


async def replay(bootstrap: str, letters: list[Record]) -> int:
    """Publish each dead letter again on its source topic, same key and body.

    The dead-letter headers are dropped and ``x-secondread-replayed-from`` names the letter, so a
    replayed message that fails again is dead-lettered afresh with its new reason. Handlers are
    idempotent, so replaying a letter twice does no harm.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for letter in letters:
            source = letter.headers.get(br.H_TOPIC) or letter.topic.removesuffix(topics.DLQ_SUFFIX)
            headers = [
                (k, v.encode())
                for k, v in letter.headers.items()
                if not k.startswith("x-secondread-dlq-")
            ]
            headers.append(
                (
                    "x-secondread-replayed-from",
                    f"{letter.topic}:{letter.partition}:{letter.offset}".encode(),
                )
            )
            await producer.send_and_wait(
                source, letter.value, key=letter.key.encode() or None, headers=headers
            )
        return len(letters)
    finally:
        await producer.stop()


AUTOMATED_STATES = frozenset({"received", "deidentified", "signed"})
"""States a case leaves without a person acting (the next service picks it up in seconds).
``assigned`` and ``unassigned`` wait for a reader or the roster; the others are final."""


def stuck(states: dict[str, dict[str, Any]], since: datetime) -> dict[str, dict[str, Any]]:
    """The cases of ``states`` (latest status event by case id) in an automated stage whose
    last status change is older than ``since``."""
    return {
        case_id: ev
        for case_id, ev in states.items()
        if ev.get("state") in AUTOMATED_STATES
        and datetime.fromisoformat(str(ev.get("occurred_at", ""))) < since
    }
