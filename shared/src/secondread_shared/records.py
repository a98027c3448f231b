"""Reading Kafka topics for operator tools: every record up to the current end, or one record at
its offset. Used by ``secondread cases`` and ``secondread dlq`` and by routing's operations page.

A reader here joins no consumer group (``group_id=None``) and commits nothing, so it never
disturbs the services' consumers (Kafka consumer configs, ``group.id``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class Record:
    """One Kafka record, its key and headers decoded as UTF-8 (replacing what is not)."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: str
    value: bytes
    headers: dict[str, str]


def record_of(r: Any) -> Record:
    """A :class:`Record` of an aiokafka ``ConsumerRecord``."""
    return Record(
        topic=str(r.topic),
        partition=int(r.partition),
        offset=int(r.offset),
        timestamp=datetime.fromtimestamp(r.timestamp / 1000, UTC),
        key=(r.key or b"").decode("utf-8", "replace"),
        value=r.value or b"",
        headers={k: (v or b"").decode("utf-8", "replace") for k, v in (r.headers or ())},
    )


def _consumer(bootstrap: str, *topic_names: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topic_names,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def read_all(
    bootstrap: str, topic_names: Sequence[str], keep: Callable[[Record], bool]
) -> list[Record]:
    """Every record of ``topic_names`` from the beginning to the current end that ``keep`` keeps,
    oldest (by record timestamp) first."""
    consumer = _consumer(bootstrap, *topic_names)
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
                    rec = record_of(r)
                    if keep(rec):
                        out.append(rec)
        return sorted(out, key=lambda r: r.timestamp)
    finally:
        await consumer.stop()


class Tail:
    """The records written to ``topic_names`` after it starts (an ``async with`` block), read as
    they come: for a tool that waits on events without reading a topic's history again and
    again."""

    def __init__(self, bootstrap: str, *topic_names: str) -> None:
        self._bootstrap = bootstrap
        self._topics = topic_names
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )

    async def __aenter__(self) -> Tail:
        parts = [
            TopicPartition(t, p)
            for t in self._topics
            for p in await partitions_of(self._bootstrap, t)
        ]
        if not parts:
            raise ValueError(f"no partitions of {', '.join(self._topics)}: do the topics exist?")
        await self._consumer.start()
        self._consumer.assign(parts)
        await self._consumer.seek_to_end(*parts)
        for part in parts:  # resolve the end now: what is written from here on is read
            await self._consumer.position(part)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def next_records(self, timeout_s: float) -> list[Record]:
        """The records that came since the last call (waiting up to ``timeout_s`` for one)."""
        batch = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000))
        return [record_of(r) for records in batch.values() for r in records]


async def partitions_of(bootstrap: str, topic: str) -> set[int]:
    """The partitions of ``topic`` (empty when the topic does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {
        int(p["partition"])
        for t in described
        if t.get("topic") == topic and not t.get("error_code")
        for p in t.get("partitions", [])
    }


async def read_one(
    bootstrap: str, topic: str, partition: int, offset: int, *, timeout_s: float = 10.0
) -> Record | None:
    """The record at ``topic``/``partition``/``offset``, or ``None`` when the partition does not
    exist or holds no record at that offset (never written, expired, or compacted away)."""
    if partition not in await partitions_of(bootstrap, topic):
        return None
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        first = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not first <= offset < end:
            return None
        consumer.seek(tp, offset)
        batch = await consumer.getmany(tp, timeout_ms=int(timeout_s * 1000), max_records=1)
        for r in batch.get(tp, []):
            return record_of(r) if r.offset == offset else None
        return None
    finally:
        await consumer.stop()
