"""A second ingest replica on the real stack: its own ports, spool and replica id, and a study
whose instances arrive at both replicas at once becomes exactly one case, announced once.

The test starts ``ingest-2`` by name (the stack's replica count stays as it was, so a plain
``make up`` elsewhere leaves it alone) and stops it again at the end.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from pydicom import Dataset, dcmread
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from secondread_cli import stack
from secondread_ingest.settings import IngestSettings
from tests.e2e.conftest import wait_for
from tests.e2e.test_ingest_dicom import open_by_intake, received_events
from tests.synthetic import Patient, ct_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

SECOND = "ingest-2"


@pytest.fixture(scope="module")
def second_ingest() -> Iterator[stack.ComponentStatus]:
    """ingest-2 running for this module; stopped afterwards unless it was running before."""
    count = stack.replicas()
    [before] = stack.status([SECOND])
    stack.up([SECOND], timeout=240)
    try:
        [row] = stack.status([SECOND])
        yield row
    finally:
        if before.pid is None:
            stack.down([SECOND])
    assert stack.replicas() == count


def test_the_second_replica_has_its_own_ports_spool_and_id(
    second_ingest: stack.ComponentStatus,
) -> None:
    assert second_ingest.healthy and second_ingest.pid is not None
    assert second_ingest.ports == (8011, 11113)
    assert second_ingest.url == "http://127.0.0.1:8011"
    environ = Path(f"/proc/{second_ingest.pid}/environ").read_bytes().split(b"\0")
    assert b"SECONDREAD_REPLICA_ID=ingest-2" in environ
    assert b"SECONDREAD_DICOM_PORT=11113" in environ
    assert (stack.stack_dir() / SECOND / "spool").is_dir()
    shown = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", "status"],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    [line] = [row for row in shown.splitlines() if f" {SECOND} " in row]
    assert "http://127.0.0.1:8011" in line and str(second_ingest.pid) in line


def _c_store(port: int, datasets: list[Dataset]) -> list[int]:
    ae = AE(ae_title="DEMO_PACS")
    ae.add_requested_context(CTImageStorage, datasets[0].file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="SECONDREAD")
    assert assoc.is_established, f"no association with the Storage SCP on {port}"
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def _rows(sql: str, uid: str) -> list[str]:
    with psycopg.connect(IngestSettings().db_dsn) as conn:
        return [str(r[0]) for r in conn.execute(sql, (uid,)).fetchall()]


def test_a_study_sent_half_to_each_replica_becomes_one_case(
    second_ingest: stack.ComponentStatus,
) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    datasets = [dcmread(io.BytesIO(d)) for d in ct_study(patient, count=8, seed=uuid.uuid4().hex)]
    uid = str(datasets[0].StudyInstanceUID)
    halves = {stack.INGEST_DICOM_PORT: datasets[0::2], second_ingest.ports[1]: datasets[1::2]}
    assert list(halves) == [11112, 11113]
    # Both replicas receive their halves at the same time: each would open the study's case.
    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(lambda kv: _c_store(*kv), halves.items()))
    assert statuses == [[0x0000] * 4, [0x0000] * 4]

    def stored() -> list[str] | None:
        rows = _rows("SELECT case_id FROM instances WHERE study_instance_uid = %s", uid)
        return rows if len(rows) == 8 else None

    cases = set(wait_for("the 8 instances stored", stored, timeout=60))
    assert len(cases) == 1, f"one study became {len(cases)} cases"
    (case_id,) = cases
    assert _rows("SELECT case_id FROM studies WHERE study_instance_uid = %s", uid) == [case_id]
    assert open_by_intake(study_instance_uids=[uid]) == case_id

    events = wait_for("case.received", lambda: received_events(case_id), timeout=60)
    assert sorted(i["sop_instance_uid"] for i in events[0]["instances"]) == sorted(
        str(ds.SOPInstanceUID) for ds in datasets
    )
    time.sleep(3)  # several completion ticks of both replicas: still announced once
    assert len(received_events(case_id)) == 1
    assert _rows("SELECT DISTINCT case_id FROM instances WHERE study_instance_uid = %s", uid) == [
        case_id
    ]
