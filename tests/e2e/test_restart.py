"""``down`` then ``up`` keeps what was stored: intakes, raw objects, the archive, the worklist."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from secondread_cli import kafka_tools, stack
from secondread_shared import topics
from secondread_shared.events import CaseDeidentified
from secondread_shared.settings import CommonSettings
from secondread_shared.storage import ObjectStore
from tests.e2e.conftest import ORTHANC, submit, wait_for
from tests.e2e.identity import TOKENS
from tests.e2e.test_pipeline import KAFKA, REPORTING, assigned_to
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

INGEST = "http://127.0.0.1:8001"
HEADERS = {"X-API-Key": "demo-hospital-key"}


def deidentified(case_id: str) -> CaseDeidentified | None:
    """This case's ``case.deidentified`` event, once deidentify has archived its study."""
    records = asyncio.run(
        kafka_tools.read_all(KAFKA, [topics.CASE_DEIDENTIFIED], lambda r: r.key == case_id)
    )
    return CaseDeidentified.model_validate_json(records[-1].value) if records else None


def worklist_entry(reader: str, case_id: str) -> dict[str, object] | None:
    r = httpx.get(f"{REPORTING}/v1/worklist", headers=TOKENS.auth(reader), timeout=10)
    assert r.status_code == 200, r.text
    return next((c for c in r.json()["cases"] if c["case_id"] == case_id), None)


def test_down_then_up_keeps_cases(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    folder = write_study(tmp_path / "s", ct_study(patient, count=2, seed=uuid.uuid4().hex))
    (tmp_path / "r.txt").write_text("No acute finding.")
    case_id = submit(folder, "Any change?", tmp_path / "r.txt")

    # This case's own study in the archive (not any earlier run's), then on a reader's worklist.
    event = wait_for("this case's study in the archive", lambda: deidentified(case_id), 120)
    [study_id] = event.orthanc_study_ids
    archived = httpx.get(f"{ORTHANC}/studies/{study_id}", timeout=10)
    assert archived.status_code == 200, archived.text
    assert archived.json()["PatientMainDicomTags"]["PatientID"] == event.patient_pseudonym
    series_before = sorted(archived.json()["Series"])
    reader = wait_for("the case on a worklist", lambda: assigned_to(case_id), 120)
    # Accepted, so that no accept timeout hands it to another reader while the stack is down.
    accepted = httpx.post(
        f"{REPORTING}/v1/cases/{case_id}/accept", headers=TOKENS.auth(reader), timeout=10
    )
    assert accepted.status_code == 200, accepted.text
    assert (worklist_entry(reader, case_id) or {}).get("status") == "accepted"
    store = ObjectStore.from_settings(CommonSettings())
    raw_keys = asyncio.run(store.list_keys("secondread-phi-raw", f"cases/{case_id}/"))
    assert len(raw_keys) == 2

    stack.down()
    assert not any(s.healthy for s in stack.status())
    stack.up(timeout=180)

    case = httpx.get(f"{INGEST}/v1/cases/{case_id}", headers=HEADERS, timeout=10)
    assert case.status_code == 200, case.text
    assert case.json()["instances"] == 2
    assert asyncio.run(store.list_keys("secondread-phi-raw", f"cases/{case_id}/")) == raw_keys
    archived = httpx.get(f"{ORTHANC}/studies/{study_id}", timeout=10)
    assert archived.status_code == 200, archived.text
    assert sorted(archived.json()["Series"]) == series_before
    # The worklist is kept: the same reader still has the case, still accepted.
    entry = worklist_entry(reader, case_id)
    assert entry is not None, f"{case_id} left {reader}'s worklist across the restart"
    assert entry["status"] == "accepted"
