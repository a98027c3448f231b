"""Every refusal of issue 3 on the real ingest: a clear error, nothing stored, service still up.

The corpus is :func:`tests.badinput.corpus`. Each bad object goes in beside a valid instance, and
the valid one must not be stored either (an upload is all or nothing).
"""

from __future__ import annotations

import copy
import http.client
import io
import uuid

import httpx
import psycopg
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from secondread_ingest.settings import IngestSettings
from tests.badinput import corpus
from tests.synthetic import Patient, ct_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

INGEST = "http://127.0.0.1:8001"
KEY = {"X-API-Key": "demo-hospital-key"}
INTAKE = (
    '{"clinical_question": "q?", "consent": true,'
    ' "referring_physician": {"name": "Dr R", "email": "r@example.org"}}'
)
SEED = uuid.uuid4().hex
CORPUS = corpus(SEED)


def stored_rows(sop_instance_uid: str) -> int:
    with psycopg.connect(IngestSettings().db_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM instances WHERE sop_instance_uid = %s", (sop_instance_uid,)
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name for b in CORPUS])
def test_upload_refuses_with_a_code_and_stores_nothing(bad) -> None:  # type: ignore[no-untyped-def]
    good = ct_study(Patient(patient_id=f"OK-{uuid.uuid4().hex[:8]}"), count=1,
                    seed=uuid.uuid4().hex)[0]  # fmt: skip
    good_uid = str(dcmread(io.BytesIO(good)).SOPInstanceUID)
    r = httpx.post(
        f"{INGEST}/v1/cases",
        headers=KEY,
        files=[
            ("intake", (None, INTAKE, "application/json")),
            ("files", ("good.dcm", good, "application/dicom")),
            ("files", (bad.filename, bad.data, bad.content_type)),
        ],
        timeout=60,
    )
    assert 400 <= r.status_code < 500, r.text
    error = r.json()["error"]
    assert error["code"] == bad.code
    assert error["message"]
    assert stored_rows(good_uid) == 0
    assert httpx.get(f"{INGEST}/health").status_code == 200


@pytest.mark.parametrize(
    "bad", [b for b in CORPUS if b.content_type == "application/dicom"], ids=lambda b: b.name
)
def test_stow_rs_refuses_each_bad_instance_by_name(bad) -> None:  # type: ignore[no-untyped-def]
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + bad.data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    r = httpx.post(
        f"{INGEST}/dicomweb/studies",
        headers={
            **KEY,
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        content=body,
    )
    assert r.status_code == 409, r.text
    (failed,) = r.json()["00081198"]["Value"]
    assert failed["00081197"]["Value"][0] in (0xC000, 0xC001, 0xC002, 0xA900)
    assert r.headers["warning"].startswith("299 secondread")


def test_c_store_refusals_are_named_statuses_and_store_nothing() -> None:
    good = dcmread(io.BytesIO(ct_study(Patient(), count=1, seed=uuid.uuid4().hex)[0]))
    no_study = copy.deepcopy(good)
    no_study.SOPInstanceUID = generate_uid()
    del no_study.StudyInstanceUID
    short = copy.deepcopy(good)
    short.SOPInstanceUID = generate_uid()
    short.PixelData = short.PixelData[:1000]
    ae = AE(ae_title="DEMO_PACS")
    ae.add_requested_context(CTImageStorage, good.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", 11112, ae_title="SECONDREAD")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(no_study)
        assert status.Status == 0xC002
        assert "StudyInstanceUID" in status.ErrorComment
        status = assoc.send_c_store(short)
        assert status.Status == 0xC001
        assert "pixel data shorter" in status.ErrorComment
    finally:
        assoc.release()
    assert stored_rows(no_study.SOPInstanceUID) == 0
    assert stored_rows(short.SOPInstanceUID) == 0


def test_oversized_upload_is_refused_before_its_body_is_read() -> None:
    conn = http.client.HTTPConnection("127.0.0.1", 8001, timeout=30)
    conn.putrequest("POST", "/v1/cases")
    conn.putheader("X-API-Key", "demo-hospital-key")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(50 * 1024**3))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    assert b'"too_large"' in resp.read()
    conn.close()


@pytest.mark.parametrize("as_json", [True, False], ids=["intake alone", "with files"])
def test_a_case_without_consent_is_refused_naming_the_field(as_json: bool) -> None:
    intake = INTAKE.replace('"consent": true', '"consent": false')
    if as_json:
        r = httpx.post(
            f"{INGEST}/v1/cases",
            headers={**KEY, "Content-Type": "application/json"},
            content=intake.replace("{", '{"study_instance_uids": ["1.2.3"], ', 1),
        )
    else:
        good = ct_study(Patient(patient_id=f"NC-{uuid.uuid4().hex[:8]}"), count=1,
                        seed=uuid.uuid4().hex)[0]  # fmt: skip
        r = httpx.post(
            f"{INGEST}/v1/cases",
            headers=KEY,
            files=[
                ("intake", (None, intake, "application/json")),
                ("files", ("good.dcm", good, "application/dicom")),
            ],
        )
        assert stored_rows(str(dcmread(io.BytesIO(good)).SOPInstanceUID)) == 0
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "no_consent" and "intake.consent" in error["message"]


def test_wrong_request_content_type_and_unknown_key() -> None:
    r = httpx.post(
        f"{INGEST}/v1/cases", headers={**KEY, "Content-Type": "text/plain"}, content=b"x"
    )
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "wrong_content_type"
    r = httpx.post(f"{INGEST}/v1/cases", headers={"X-API-Key": "nope"}, json={})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
