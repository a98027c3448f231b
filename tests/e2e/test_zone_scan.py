"""The clear zone holds no identifier: every message, object and archived instance written
during this test session is scanned for the identifiers the synthetic studies plant.

Runs last among the end-to-end tests (file order), so it sees what every other test sent
through the real pipeline (uploads, C-STORE, STOW-RS, priors); it sends one case of its own
first, so the scan is never empty.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from minio import Minio

from secondread_cli import kafka_tools
from secondread_shared import topics
from secondread_shared.settings import BUCKETS_CLEAR, CommonSettings
from tests.e2e.conftest import ORTHANC, ZoneBaseline, submit, wait_for
from tests.synthetic import Patient, ct_study, planted, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

KAFKA = "127.0.0.1:9092"
CLEAR_TOPICS = [
    name for t in topics.EVENT_TOPICS if not topics.is_phi(t) for name in (t, topics.dlq(t))
]


def identifiers() -> list[bytes]:
    """What the synthetic studies plant (every test patient's id starts with ``MRN-``)."""
    values = [v for v in planted(Patient()) if v != Patient().patient_id]
    return [v.lower().encode() for v in [*values, "MRN-", "Panza"]]


def leaks(blob: bytes, secrets: list[bytes]) -> list[bytes]:
    low = blob.lower()
    return [s for s in secrets if s in low]


def test_nothing_identifying_reached_the_clear_zone(
    tmp_path: Path, zone_baseline: ZoneBaseline
) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    folder = write_study(tmp_path / "s", ct_study(patient, count=2, seed=uuid.uuid4().hex))
    (tmp_path / "r.txt").write_text(
        f"{patient.name} ({patient.patient_id}), {patient.address}, tel {patient.phone}."
    )
    case_id = submit(folder, f"Quixote {patient.patient_id}?", tmp_path / "r.txt")
    since = zone_baseline.started.timestamp()

    def deidentified() -> list[kafka_tools.Record] | None:
        recs = asyncio.run(
            kafka_tools.read_all(KAFKA, [topics.CASE_DEIDENTIFIED], lambda r: r.key == case_id)
        )
        return recs or None

    wait_for("the scan's own case to be de-identified", deidentified, timeout=90)
    secrets = identifiers()
    found: list[str] = []

    # 1. every clear-zone message (and dead letter) of this session, headers included
    records = asyncio.run(
        kafka_tools.read_all(KAFKA, CLEAR_TOPICS, lambda r: r.timestamp.timestamp() >= since)
    )
    assert any(r.key == case_id for r in records)
    for r in records:
        blob = r.value + json.dumps(r.headers).encode()
        found += [f"{r.topic}@{r.partition}:{r.offset}: {s!r}" for s in leaks(blob, secrets)]

    # 2. every object written to a clear bucket during this session
    settings = CommonSettings()
    s3 = Minio(
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
    )
    scanned_objects = 0
    for bucket in BUCKETS_CLEAR:
        for obj in s3.list_objects(bucket_name=bucket, recursive=True):
            if obj.last_modified is None or obj.last_modified < zone_baseline.started:
                continue
            resp = s3.get_object(bucket_name=bucket, object_name=str(obj.object_name))
            try:
                data = resp.read()
            finally:
                resp.close()
                resp.release_conn()
            scanned_objects += 1
            found += [f"s3://{bucket}/{obj.object_name}: {s!r}" for s in leaks(data, secrets)]
    assert scanned_objects >= 2

    # 3. every instance archived in Orthanc during this session
    changes = httpx.get(
        f"{ORTHANC}/changes",
        params={"since": zone_baseline.orthanc_seq, "limit": 100000},
        timeout=30,
    ).json()["Changes"]
    new = [c["ID"] for c in changes if c["ChangeType"] == "NewInstance"]
    assert len(new) >= 2
    for iid in new:
        resp = httpx.get(f"{ORTHANC}/instances/{iid}/file", timeout=30)
        if resp.status_code == 404:  # deleted since (the ingest benchmark cleans up after itself)
            continue
        found += [f"orthanc instance {iid}: {s!r}" for s in leaks(resp.content, secrets)]

    assert not found, "identifiers in the clear zone:\n" + "\n".join(found[:20])
