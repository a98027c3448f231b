"""ingest's DICOM doors on the real stack, driven by clients nobody here wrote.

- dcmtk ``storescu`` and ``echoscu`` to the Storage SCP (11112, AE SECONDREAD);
- the hospital Orthanc (8043/4243, AE DEMO_PACS) pushing a study by C-STORE;
- ``dicomweb-client`` storing by STOW-RS;
- ``secondread submit`` uploading a zip and asking for priors, which ingest fetches from the
  hospital Orthanc by C-FIND/C-MOVE.

Completion uses the demo hospital's short windows (quiet 2 s, intake hold 15 s).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread

from secondread_cli import stack
from secondread_ingest.settings import IngestSettings
from secondread_shared import topics
from tests.e2e.conftest import submit, wait_for
from tests.e2e.test_pipeline import read_topic
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack", "amend_topic")]

INGEST = "http://127.0.0.1:8001"
PACS = "http://127.0.0.1:8043"
KEY = {"X-API-Key": "demo-hospital-key"}


@pytest.fixture(scope="module")
def amend_topic() -> None:
    """A stack started before ``case.amended`` existed lacks that topic: create it (idempotent)."""
    stack.ensure_topics()


def storescu(files: list[Path], *, aet: str = "DEMO_PACS") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["storescu", "-aet", aet, "-aec", "SECONDREAD", "127.0.0.1", "11112", *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def intake(**extra: Any) -> dict[str, Any]:
    return {
        "clinical_question": "Interval change?",
        "original_report": "Stable appearance.",
        "referring_physician": {"name": "Dr Referrer", "email": "referrer@example.org"},
        "consent": True,
        **extra,
    }


def open_by_intake(**extra: Any) -> str:
    r = httpx.post(f"{INGEST}/v1/cases", headers=KEY, json=intake(**extra))
    assert r.status_code == 201, r.text
    return str(r.json()["case_id"])


def case(case_id: str) -> dict[str, Any]:
    r = httpx.get(f"{INGEST}/v1/cases/{case_id}", headers=KEY)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def received_events(case_id: str) -> list[dict[str, Any]]:
    return [json.loads(v) for v, _ in read_topic(topics.CASE_RECEIVED, case_id)]


def amended_events(case_id: str) -> list[dict[str, Any]]:
    return [json.loads(v) for v, _ in read_topic(topics.CASE_AMENDED, case_id)]


def study_uid(data: bytes) -> str:
    import io

    return str(dcmread(io.BytesIO(data), stop_before_pixels=True).StudyInstanceUID)


def cases_of_study(uid: str) -> list[str]:
    with psycopg.connect(IngestSettings().db_dsn) as conn:
        rows = conn.execute(
            "SELECT DISTINCT case_id FROM instances WHERE study_instance_uid = %s", (uid,)
        ).fetchall()
    return [r[0] for r in rows]


def test_storescu_study_then_intake_is_announced_once_and_late_instances_amend(
    tmp_path: Path,
) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    seed = uuid.uuid4().hex
    instances = ct_study(patient, count=4, seed=seed)
    folder = write_study(tmp_path / "s", instances[:3])
    done = storescu(sorted(folder.glob("*.dcm")))
    assert done.returncode == 0, done.stderr
    # The same instance again (same bytes) is stored once.
    assert storescu([folder / "IM00000.dcm"]).returncode == 0
    case_id = open_by_intake(study_instance_uids=[study_uid(instances[0])])
    events = wait_for("case.received", lambda: received_events(case_id), timeout=30)
    assert len(events) == 1
    assert len(events[0]["instances"]) == 3
    assert {i["role"] for i in events[0]["instances"]} == {"current"}
    assert case(case_id)["status"] == "received"

    # A late instance amends the case: an explicit event, never a second case.
    late = write_study(tmp_path / "late", [instances[3]])
    assert storescu([late / "IM00000.dcm"]).returncode == 0
    amended = wait_for("case.amended", lambda: amended_events(case_id), timeout=30)
    assert [i["sop_instance_uid"] for i in amended[0]["instances"]] == [
        dcmread(late / "IM00000.dcm").SOPInstanceUID
    ]
    assert amended[0]["causation_id"] == events[0]["event_id"]
    assert cases_of_study(study_uid(instances[0])) == [case_id]
    assert case(case_id)["instances"] == 4
    assert len(received_events(case_id)) == 1


def test_declared_count_completes_without_waiting_and_a_conflict_is_flagged(
    tmp_path: Path,
) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    instances = ct_study(patient, count=2, seed=uuid.uuid4().hex)
    case_id = open_by_intake(study_instance_uids=[study_uid(instances[0])], expected_instances=2)
    assert case(case_id)["status"] == "awaiting_images"
    folder = write_study(tmp_path / "s", instances)
    assert storescu(sorted(folder.glob("*.dcm"))).returncode == 0
    events = wait_for("case.received", lambda: received_events(case_id), timeout=30)
    assert len(events[0]["instances"]) == 2

    # Other bytes under a SOP Instance UID already stored: kept aside and flagged.
    ds = dcmread(folder / "IM00001.dcm")
    ds.ImageComments = "changed"
    ds.save_as(tmp_path / "changed.dcm")
    assert storescu([tmp_path / "changed.dcm"]).returncode == 0
    amended = wait_for("case.amended", lambda: amended_events(case_id), timeout=30)
    assert amended[0]["flags"] == [f"conflicting_duplicate:{ds.SOPInstanceUID}"]
    assert amended[0]["instances"] == []
    assert case(case_id)["instances"] == 2


def test_unknown_calling_ae_is_rejected_at_association_and_echo_works(tmp_path: Path) -> None:
    folder = write_study(tmp_path / "s", ct_study(Patient(), count=1, seed=uuid.uuid4().hex))
    done = storescu(sorted(folder.glob("*.dcm")), aet="STRANGER")
    assert done.returncode != 0
    assert "Calling AE Title Not Recognized" in done.stderr
    echo = subprocess.run(
        ["echoscu", "-aet", "DEMO_PACS", "-aec", "SECONDREAD", "127.0.0.1", "11112"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert echo.returncode == 0, echo.stderr
    wrong_called = subprocess.run(
        ["echoscu", "-aet", "DEMO_PACS", "-aec", "NOT_US", "127.0.0.1", "11112"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert "Called AE Title Not Recognized" in wrong_called.stderr


def test_hospital_orthanc_pushes_a_study_by_c_store() -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    instances = ct_study(patient, count=3, seed=uuid.uuid4().hex)
    orthanc_ids = {
        httpx.post(f"{PACS}/instances", content=d).json()["ParentStudy"] for d in instances
    }
    (study_id,) = orthanc_ids
    pushed = httpx.post(
        f"{PACS}/modalities/secondread/store", json={"Resources": [study_id]}, timeout=60
    )
    assert pushed.status_code == 200, pushed.text
    case_id = open_by_intake(study_instance_uids=[study_uid(instances[0])])
    events = wait_for("case.received", lambda: received_events(case_id), timeout=30)
    assert len(events[0]["instances"]) == 3
    httpx.delete(f"{PACS}/studies/{study_id}")


def test_dicomweb_client_stores_by_stow_rs() -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    instances = ct_study(patient, count=2, seed=uuid.uuid4().hex)
    import io

    datasets = [dcmread(io.BytesIO(d)) for d in instances]
    client = DICOMwebClient(url=f"{INGEST}/dicomweb", headers=KEY)
    response = client.store_instances(datasets)
    stored = response.ReferencedSOPSequence
    assert {str(i.ReferencedSOPInstanceUID) for i in stored} == {
        str(d.SOPInstanceUID) for d in datasets
    }
    assert "FailedSOPSequence" not in response
    case_id = cases_of_study(str(datasets[0].StudyInstanceUID))[0]
    assert case(case_id)["source"] == "stow"
    assert case(case_id)["status"] in ("receiving", "parked")


def test_stow_rs_names_each_refused_part_in_the_failed_sop_sequence() -> None:
    good = ct_study(Patient(), count=1, seed=uuid.uuid4().hex)[0]
    boundary = uuid.uuid4().hex
    body = (
        b"".join(
            b"--"
            + boundary.encode()
            + b"\r\nContent-Type: application/dicom\r\n\r\n"
            + part
            + b"\r\n"
            for part in (good, b"not dicom at all" * 10)
        )
        + b"--"
        + boundary.encode()
        + b"--\r\n"
    )
    r = httpx.post(
        f"{INGEST}/dicomweb/studies",
        headers={
            **KEY,
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        content=body,
    )
    assert r.status_code == 202, r.text
    assert r.headers["content-type"].startswith("application/dicom+json")
    failed = r.json()["00081198"]["Value"]
    assert failed[0]["00081197"]["Value"] == [0xC000]
    assert len(r.json()["00081199"]["Value"]) == 1
    assert "not a DICOM Part 10 file" in r.headers["warning"]
    wrong = httpx.post(
        f"{INGEST}/dicomweb/studies", headers={**KEY, "Content-Type": "application/dicom"},
        content=good,
    )  # fmt: skip
    assert wrong.status_code == 415
    assert wrong.json()["error"]["code"] == "wrong_content_type"


def test_study_without_intake_is_parked_then_taken_up_by_its_intake(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    instances = ct_study(patient, count=2, seed=uuid.uuid4().hex)
    folder = write_study(tmp_path / "s", instances)
    assert storescu(sorted(folder.glob("*.dcm"))).returncode == 0
    uid = study_uid(instances[0])
    case_id = wait_for("the study's case", lambda: (cases_of_study(uid) or [None])[0])

    def parked() -> dict[str, Any] | None:
        listed = httpx.get(f"{INGEST}/v1/parked", headers=KEY).json()["parked"]
        return next((c for c in listed if c["case_id"] == case_id), None)

    entry = wait_for("the study parked", parked, timeout=40)
    assert "no intake within" in entry["parked_reason"]
    assert open_by_intake(study_instance_uids=[uid]) == case_id
    events = wait_for("case.received", lambda: received_events(case_id), timeout=30)
    assert len(events[0]["instances"]) == 2


def test_submit_zip_with_priors_fetched_from_the_hospital_pacs(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    prior = ct_study(patient, count=2, seed=uuid.uuid4().hex, study_date="20250105")
    for d in prior:
        assert httpx.post(f"{PACS}/instances", content=d).status_code == 200
    current = ct_study(patient, count=3, seed=uuid.uuid4().hex)
    folder = write_study(tmp_path / "study", current)
    (tmp_path / "r.txt").write_text("Nodule, 6 mm.")
    case_id = submit(folder, "Growth since the prior?", tmp_path / "r.txt", "--fetch-priors")
    events = wait_for("case.received", lambda: received_events(case_id), timeout=60)
    roles = [i["role"] for i in events[0]["instances"]]
    assert roles.count("current") == 3
    assert roles.count("prior") == 2
    assert {i["study_instance_uid"] for i in events[0]["instances"] if i["role"] == "prior"} == {
        study_uid(prior[0])
    }
    found = httpx.post(
        f"{PACS}/tools/find", json={"Level": "Study", "Query": {"PatientID": patient.patient_id}}
    ).json()
    for study_id in found:
        httpx.delete(f"{PACS}/studies/{study_id}")
