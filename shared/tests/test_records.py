"""One record read by its offset on the real broker of the local stack (the operations page's
replay fetches a dead letter this way), and ``None`` where there is no record."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer

from secondread_shared import topics
from secondread_shared.records import Tail, read_one
from tests.e2e.conftest import running_stack  # noqa: F401  (the fixture: starts the stack)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("running_stack")]

KAFKA = "127.0.0.1:9092"
TOPIC = topics.dlq(topics.ROSTER_CHANGED)


async def test_a_record_is_read_at_its_offset_and_nothing_elsewhere() -> None:
    key = f"records-test-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(TOPIC, b"body", key=key.encode(), headers=[("h", b"v")])
    finally:
        await producer.stop()
    rec = await read_one(KAFKA, TOPIC, meta.partition, meta.offset)
    assert rec is not None
    assert (rec.key, rec.value, rec.headers, rec.offset) == (key, b"body", {"h": "v"}, meta.offset)
    assert await read_one(KAFKA, TOPIC, meta.partition, meta.offset + 10**9) is None
    assert await read_one(KAFKA, TOPIC, 99, 0) is None
    assert await read_one(KAFKA, "secondread.no-such-topic.dlq", 0, 0) is None


async def test_a_tail_reads_what_is_written_after_it_starts_and_nothing_before() -> None:
    key = f"tail-test-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, b"before", key=key.encode())
        async with Tail(KAFKA, TOPIC) as tail:
            await producer.send_and_wait(TOPIC, b"after", key=key.encode())
            seen: list[bytes] = []
            for _ in range(10):
                seen += [r.value for r in await tail.next_records(1.0) if r.key == key]
                if seen:
                    break
    finally:
        await producer.stop()
    assert seen == [b"after"]
