"""Kafka down while a case arrives: ingest still accepts it (object store and PostgreSQL hold it,
the event waits in the outbox) and announces it once Kafka is back; the case then flows on."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from secondread_cli import kafka_tools, stack
from secondread_shared import topics
from tests.e2e.conftest import submit, wait_for
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

KAFKA = "127.0.0.1:9092"


def received(case_id: str) -> bool:
    recs = asyncio.run(
        kafka_tools.read_all(KAFKA, [topics.CASE_RECEIVED], lambda r: r.key == case_id)
    )
    return len(recs) == 1


def test_a_case_accepted_while_kafka_is_down_is_announced_when_it_returns(
    tmp_path: Path,
) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    folder = write_study(tmp_path / "s", ct_study(patient, count=2, seed=uuid.uuid4().hex))
    (tmp_path / "r.txt").write_text("No acute finding.")
    stack.down(["kafka"])
    try:
        # accepted without Kafka
        case_id = submit(folder, "Any change?", tmp_path / "r.txt")
    finally:
        stack.up(["kafka"], timeout=120)
    wait_for("the outbox to publish case.received", lambda: received(case_id), timeout=150, every=2)

    def deidentified() -> bool:
        recs = asyncio.run(
            kafka_tools.read_all(KAFKA, [topics.CASE_DEIDENTIFIED], lambda r: r.key == case_id)
        )
        return bool(recs)

    wait_for("the case to flow on to deidentify", deidentified, timeout=120, every=2)
