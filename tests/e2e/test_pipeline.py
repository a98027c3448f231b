"""One case from upload to a delivered email, across all five services, on the real stack.

Checks on the way: the clear zone (topics, buckets, archive) never carries a planted identifier;
the status topic ends in ``notified``; the trace store holds one trace with spans from all five
services; the signed report verifies.
"""

from __future__ import annotations

import asyncio
import base64
import email
import json
import subprocess
import uuid
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from secondread_cli import kafka_tools, mail, stack
from secondread_cli.traces import case_traces, services_in
from secondread_shared import topics
from secondread_shared.settings import CommonSettings
from secondread_shared.storage import ObjectStore
from tests.e2e.conftest import submit, wait_for
from tests.e2e.identity import READERS, TOKENS
from tests.e2e.reporting_support import complete_draft, sign_case
from tests.synthetic import Patient, ct_study, planted, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

KAFKA = "127.0.0.1:9092"
REPORTING = "http://127.0.0.1:8004"
JAEGER = "http://127.0.0.1:16686"
CLEAR_TOPICS = [t for t in topics.EVENT_TOPICS if not topics.is_phi(t)]


def read_topic(topic: str, case_id: str) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """Every message of ``case_id`` on ``topic``, from the beginning to the current end."""
    records = asyncio.run(kafka_tools.read_all(KAFKA, [topic], lambda r: r.key == case_id))
    return [(r.value, [(k, v.encode()) for k, v in r.headers.items()]) for r in records]


def find_mails(case_id: str) -> dict[str, Message]:
    """The case's delivered emails by recipient (To), read from the mail server (Mailpit)."""
    found: dict[str, Message] = {}
    for data in mail.of_case(case_id):
        msg = email.message_from_bytes(data)
        found[str(msg["To"])] = msg
    return found


def assigned_to(case_id: str) -> str | None:
    """The demo reader whose worklist holds ``case_id`` (asked with each one's Keycloak token)."""
    for rad in READERS:
        r = httpx.get(f"{REPORTING}/v1/worklist", headers=TOKENS.auth(rad))
        if r.status_code == 200 and any(c["case_id"] == case_id for c in r.json()["cases"]):
            return rad
    return None


def assert_clean(blob: bytes, secrets: list[str], where: str) -> None:
    low = blob.lower()
    for value in secrets:
        assert value.lower().encode() not in low, f"planted identifier found in {where}"


def test_case_travels_from_upload_to_delivered_email(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    secrets = planted(patient)
    folder = write_study(tmp_path / "study", ct_study(patient, count=4, seed=uuid.uuid4().hex))
    report_file = tmp_path / "report.txt"
    report_file.write_text(
        f"Patient {patient.name.replace('^', ' ')} ({patient.patient_id}), born "
        f"{patient.birth_date}: 8 mm nodule RUL, cannot exclude malignancy."
    )

    # 1. ingest: the real CLI against the real HTTP API.
    case_id = submit(
        folder,
        f"Alonso Quixote {patient.patient_id}: is the nodule malignant?",
        report_file,
        "--physician-name",
        "Dr Referrer",
        "--patient-consent",
        "--patient-email",
        "patient@example.org",
    )

    # 2. deidentify + routing: the case reaches a radiologist's worklist.
    rad = wait_for("the case on a worklist", lambda: assigned_to(case_id), timeout=90)
    auth = {"Authorization": f"Bearer {TOKENS[rad]}"}
    view = httpx.get(f"{REPORTING}/v1/cases/{case_id}", headers=auth).json()
    assert view["patient_pseudonym"].startswith("SR")
    assert "hedge:cannot exclude" in view["flags"]
    assert_clean(json.dumps(view).encode(), secrets, "the reporting case view")

    # 3. reporting: draft and sign; a second signature is refused; the signature verifies.
    draft = complete_draft(view["statements"], summary="Upgraded: suspicious nodule")
    draft["statements"][0].update(verdict="refined", grade="2a", comment="8 mm, spiculated")
    draft["assessment"]["severity_changed"] = True
    signed = sign_case(case_id, rad, draft)
    report_id = signed["report_id"]
    again = httpx.post(f"{REPORTING}/v1/cases/{case_id}/report", json={"draft_version": 1},
                       headers={**auth, "Idempotency-Key": "another"})  # fmt: skip
    assert again.status_code == 409
    stored = httpx.get(f"{REPORTING}/v1/reports/{report_id}", headers=auth).json()
    key = httpx.get(f"{REPORTING}/v1/keys/{stored['signature']['key_id']}").json()
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    public.verify(
        base64.b64decode(stored["signature"]["signature"]), rfc8785.dumps(stored["report"])
    )

    # 4. notify: one email to the physician and one to the patient (who asked), each carrying
    #    the signed report.
    def both_mails() -> dict[str, Message] | None:
        found = find_mails(case_id)
        return found if len(found) == 2 else None

    mails = wait_for("the delivery emails", both_mails, timeout=60)
    assert set(mails) == {"Dr Referrer <referrer@example.org>", "Patient <patient@example.org>"}
    mail = mails["Dr Referrer <referrer@example.org>"]
    parts = {p.get_filename(): p.get_payload(decode=True) for p in mail.walk() if p.get_filename()}
    assert (
        json.loads(parts["report.json"])["assessment"]["summary"] == "Upgraded: suspicious nodule"
    )
    assert parts["report.pdf"].startswith(b"%PDF")
    pdf = httpx.get(f"{REPORTING}/v1/reports/{report_id}/pdf", headers=auth)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # the email carries a delivery copy (notify's cover page, then the signed PDF)
    for blob in (pdf.content, parts["report.pdf"]):
        text = subprocess.run(["pdftotext", "-", "-"], input=blob, capture_output=True,
                              check=True).stdout.decode()  # fmt: skip
        assert "Upgraded: suspicious nodule" in " ".join(text.split())

    # 5. the status topic ends in "notified".
    def final_state() -> str | None:
        msgs = read_topic(topics.CASE_STATUS, case_id)
        state = json.loads(msgs[-1][0])["state"] if msgs else None
        return state if state == "notified" else None

    wait_for("status notified", final_state, timeout=30)

    # 6. one trace holds spans from all five services.
    def full_trace() -> dict[str, Any] | None:
        for tr in case_traces(JAEGER, case_id):
            if {f"secondread-{s}" for s in stack.SERVICES} <= services_in(tr):
                return tr
        return None

    wait_for("a trace with spans from all five services", full_trace, timeout=60, every=2)

    # 7. the clear zone holds no planted identifier: topics, buckets, archive.
    for topic in CLEAR_TOPICS:
        for value, headers in read_topic(topic, case_id):
            assert_clean(value, secrets, topic)
            assert_clean(b"".join(v for _, v in headers), secrets, f"{topic} headers")
    deidentified = read_topic(topics.CASE_DEIDENTIFIED, case_id)
    assert deidentified, "case.deidentified was published"
    event = json.loads(deidentified[0][0])
    store = ObjectStore.from_settings(CommonSettings())
    for ref in event["instances"]:
        assert ref["bucket"] == "secondread-clear"
        assert_clean(asyncio.run(store.get(ref["bucket"], ref["key"])), secrets, ref["key"])
    for study_id in event["orthanc_study_ids"]:
        instances = httpx.get(f"http://127.0.0.1:8042/studies/{study_id}/instances").json()
        # the 4 images, and the signed report beside them as an Encapsulated PDF and an SR
        assert len(instances) == 6
        for inst in instances:
            data = httpx.get(f"http://127.0.0.1:8042/instances/{inst['ID']}/file").content
            assert_clean(data, secrets, "the Orthanc archive")

    # 8. the same patient returns: the first study is found in the archive and offered as a
    #    prior (same pseudonym), with a viewer link.
    later = write_study(
        tmp_path / "later",
        ct_study(patient, count=2, seed=uuid.uuid4().hex, study_date="20260601"),
    )
    second = submit(later, "Follow-up: has the nodule grown?", report_file)
    rad2 = wait_for("the follow-up on a worklist", lambda: assigned_to(second), timeout=90)
    view2 = httpx.get(
        f"{REPORTING}/v1/cases/{second}", headers={"Authorization": f"Bearer {TOKENS[rad2]}"}
    ).json()
    assert view2["patient_pseudonym"] == view["patient_pseudonym"]
    [prior] = [p for p in view2["priors"] if p["orthanc_study_id"] in event["orthanc_study_ids"]]
    assert "same body part" in prior["reasons"] and "same modality" in prior["reasons"]
    # the prior's link opens the viewer on the follow-up beside the prior
    assert f",{prior['study_instance_uid']}&" in prior["viewer_link"]
    assert "/viewer/viewer?StudyInstanceUIDs=" in prior["viewer_link"]
    # ... and the first case's signed opinion, whose link opens for the follow-up's reader
    [opinion] = [o for o in view2["earlier_opinions"] if o["report_id"] == report_id]
    opened = httpx.get(f"{REPORTING}{opinion['report_link']}", headers=TOKENS.auth(rad2))
    assert opened.status_code == 200 and opened.json()["report"]["report_id"] == report_id
