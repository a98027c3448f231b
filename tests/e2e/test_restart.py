"""``down`` then ``up`` keeps what was stored: intakes, raw objects, the archive, the worklist."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from secondread_cli import stack
from secondread_shared.settings import CommonSettings
from secondread_shared.storage import ObjectStore
from tests.e2e.conftest import submit, wait_for
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

INGEST = "http://127.0.0.1:8001"
HEADERS = {"X-API-Key": "demo-hospital-key"}


def test_down_then_up_keeps_cases(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    folder = write_study(tmp_path / "s", ct_study(patient, count=2, seed=uuid.uuid4().hex))
    (tmp_path / "r.txt").write_text("No acute finding.")
    case_id = submit(folder, "Any change?", tmp_path / "r.txt")
    wait_for(
        "the case in the archive",
        lambda: httpx.post(
            "http://127.0.0.1:8042/tools/find",
            json={"Level": "Study", "Query": {"PatientID": "SR*"}},
        ).json(),
    )
    store = ObjectStore.from_settings(CommonSettings())
    raw_keys = asyncio.run(store.list_keys("secondread-phi-raw", f"cases/{case_id}/"))
    assert len(raw_keys) == 2
    studies_before = httpx.get("http://127.0.0.1:8042/studies").json()

    stack.down()
    assert not any(s.healthy for s in stack.status())
    stack.up(timeout=180)

    case = httpx.get(f"{INGEST}/v1/cases/{case_id}", headers=HEADERS)
    assert case.status_code == 200, case.text
    assert case.json()["instances"] == 2
    assert asyncio.run(store.list_keys("secondread-phi-raw", f"cases/{case_id}/")) == raw_keys
    assert set(studies_before) <= set(httpx.get("http://127.0.0.1:8042/studies").json())
