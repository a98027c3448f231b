"""An upload retried with the same ``Idempotency-Key`` (a lost answer, a dropped connection)
opens its case once; another key is another case."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from secondread_cli.submit import submit_case
from tests.e2e.test_ingest_dicom import KEY, intake
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

INGEST = "http://127.0.0.1:8001"


def upload(folder: Path, key: str) -> httpx.Response:
    files = [
        ("files", (p.name, p.read_bytes(), "application/dicom")) for p in sorted(folder.iterdir())
    ]
    return httpx.post(
        f"{INGEST}/v1/cases",
        files=[("intake", (None, json.dumps(intake()), "application/json")), *files],
        headers={**KEY, "Idempotency-Key": key},
        timeout=60,
    )


def test_the_same_key_opens_one_case_and_another_key_another(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    folder = write_study(tmp_path / "s", ct_study(patient, count=2, seed=uuid.uuid4().hex))
    key = f"test-{uuid.uuid4()}"
    first = upload(folder, key)
    assert first.status_code == 201, first.text
    again = upload(folder, key)  # the client never saw the first answer and retries
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.json()["instances"] == 2
    bad = upload(folder, "x" * 201)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_idempotency_key"


def test_secondread_submit_sends_one_key_for_all_its_attempts(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    folder = write_study(tmp_path / "s", ct_study(patient, count=2, seed=uuid.uuid4().hex))
    key = f"test-{uuid.uuid4()}"
    one = submit_case(url=INGEST, api_key=KEY["X-API-Key"], folder=folder, intake=intake(),
                      idempotency_key=key)  # fmt: skip
    two = submit_case(url=INGEST, api_key=KEY["X-API-Key"], folder=folder, intake=intake(),
                      idempotency_key=key)  # fmt: skip
    assert one["case_id"] == two["case_id"]
