"""The clear zone holds no identifier: every message, object and archived instance written
during this test session is scanned for the identifiers the synthetic studies plant.

Runs after every other test of the session (marker ``runs_last``, ordered by the hook in
tests/e2e/conftest.py), so it sees what every other test sent through the real pipeline
(uploads, C-STORE, STOW-RS, priors); it sends one case of its own first, so the scan is never
empty.
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
from tests.e2e.test_pipeline import REPORTING, TOKENS, assigned_to
from tests.synthetic import (
    FREE_TEXT_CLINICAL,
    FREE_TEXT_DICOM,
    FREE_TEXT_PLANTED,
    FREE_TEXT_QUESTION,
    FREE_TEXT_REPORT,
    Patient,
    ct_study,
    leaks,
    planted,
    write_study,
)

pytestmark = [pytest.mark.e2e, pytest.mark.runs_last, pytest.mark.usefixtures("running_stack")]

KAFKA = "127.0.0.1:9092"
CLEAR_TOPICS = [
    name for t in topics.EVENT_TOPICS if not topics.is_phi(t) for name in (t, topics.dlq(t))
]


def identifiers() -> list[bytes]:
    """What the synthetic studies plant (every test patient's id starts with ``MRN-``), and
    the free-text identifiers no header knows."""
    values = [v for v in planted(Patient()) if v != Patient().patient_id]
    return [v.lower().encode() for v in [*values, "MRN-", "Panza", *FREE_TEXT_PLANTED]]


def test_free_text_names_places_and_numbers_no_header_knows_stay_in_the_phi_zone(
    tmp_path: Path,
) -> None:
    """Question, report and DICOM free text name people, places and numbers that appear in no
    header and no intake field: none reaches the reader, the eponyms and scores do. (The scan
    below then looks for them in everything the clear zone received.)"""
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    study = ct_study(patient, count=2, seed=uuid.uuid4().hex, free_text=FREE_TEXT_DICOM)
    folder = write_study(tmp_path / "s", study)
    (tmp_path / "r.txt").write_text(FREE_TEXT_REPORT)
    case_id = submit(folder, FREE_TEXT_QUESTION, tmp_path / "r.txt")

    reader = wait_for("the free-text case on a worklist", lambda: assigned_to(case_id), 120)
    view = httpx.get(
        f"{REPORTING}/v1/cases/{case_id}",
        headers={"Authorization": f"Bearer {TOKENS[reader]}"},
        timeout=10,
    ).json()
    shown = f"{view['clinical_question']}\n{view['original_report']}"
    for value in FREE_TEXT_PLANTED:
        assert value.lower() not in shown.lower(), f"{value!r} reached the reader"
    for term in FREE_TEXT_CLINICAL:
        assert term in shown, f"{term!r} did not reach the reader"
    assert "[NAME]" in shown and "[ORG]" in shown and "[PHONE]" in shown and "[AGE]" in shown

    # The archived instances: history and comments cleaned, patient comments removed.
    instance = httpx.post(
        f"{ORTHANC}/tools/find",
        json={"Level": "Instance", "Query": {"PatientID": view["patient_pseudonym"]}},
        timeout=10,
    ).json()[0]
    tags = httpx.get(f"{ORTHANC}/instances/{instance}/simplified-tags", timeout=10).json()
    assert "PatientComments" not in tags
    assert tags["AdditionalPatientHistory"].startswith("Seen by Dr [NAME] at [ORG] on ")
    assert "[ORG]" in tags["ImageComments"] and "[PHONE]" in tags["ImageComments"]


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
