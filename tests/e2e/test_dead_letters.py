"""A poison message on the real broker: dead-lettered with its reason, never blocking, replayed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from secondread_cli import kafka_tools
from secondread_shared import broker as br
from secondread_shared import topics
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

KAFKA = "127.0.0.1:9092"


async def _send(topic: str, key: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


def _letters(case_id: str) -> list[kafka_tools.Record]:
    letters = asyncio.run(kafka_tools.dead_letters(KAFKA, topics.CASE_DEIDENTIFIED))
    return [r for r in letters if r.key == case_id]


def test_poison_message_is_dead_lettered_with_reason_and_can_be_replayed() -> None:
    case_id = f"poison-{uuid.uuid4()}"
    asyncio.run(_send(topics.CASE_DEIDENTIFIED, case_id, b'{"not": "a case.deidentified event"}'))

    [letter] = wait_for("the dead letter", lambda: _letters(case_id) or None, timeout=60)
    assert letter.headers[br.H_TOPIC] == topics.CASE_DEIDENTIFIED
    assert letter.headers[br.H_SERVICE] == "routing"
    assert "ValidationError" in letter.headers[br.H_REASON]
    assert letter.headers[br.H_PARTITION].isdigit() and letter.headers[br.H_OFFSET].isdigit()
    assert json.loads(letter.value) == {"not": "a case.deidentified event"}

    # The case is visibly dead-lettered, and routing keeps serving.
    states = asyncio.run(kafka_tools.case_states(KAFKA))
    assert states[case_id].state == "dead_lettered"
    assert httpx.get("http://127.0.0.1:8003/ready").status_code == 200

    # Operators see it and can replay it; still invalid, it is dead-lettered afresh.
    listed = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", "dlq", "list",
         "--topic", topics.CASE_DEIDENTIFIED],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert case_id in listed.stdout
    subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", "dlq", "replay",
         "--topic", topics.CASE_DEIDENTIFIED, "--case", case_id],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    wait_for("the replayed letter to fail again", lambda: len(_letters(case_id)) == 2, timeout=60)
