"""notify on the real stack: with the mail server down, a signed report still reaches the
hospital PACS (another channel is never held back) as an Encapsulated PDF and an SR beside the
original study, under its patient, and
the email is retried on its schedule and delivered once the mail server is back."""

from __future__ import annotations

import email
import io
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from pydicom import dcmread

from secondread_cli import mail, stack
from secondread_notify.settings import NotifySettings
from tests.e2e.conftest import submit, wait_for
from tests.e2e.reporting_support import sign_case
from tests.e2e.test_pipeline import assigned_to
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

PACS = "http://127.0.0.1:8043"


def email_delivery(report_id: str) -> dict[str, object] | None:
    with psycopg.connect(NotifySettings().db_dsn) as conn:
        row = conn.execute(
            "SELECT status, attempts, detail FROM deliveries"
            " WHERE report_id = %s AND channel = 'email' AND recipient_role = 'physician'",
            (report_id,),
        ).fetchone()
    return {"status": row[0], "attempts": row[1], "detail": row[2]} if row else None


def test_mail_down_delays_only_the_email_and_the_pacs_gets_the_report(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    study = ct_study(patient, count=2, seed=uuid.uuid4().hex)
    study_uid = str(dcmread(io.BytesIO(study[0])).StudyInstanceUID)
    folder = write_study(tmp_path / "s", study)
    (tmp_path / "r.txt").write_text("Findings: 8 mm nodule. Impression: probably benign.")
    for instance in study:  # the hospital's PACS holds the original study
        httpx.post(f"{PACS}/instances", content=instance, timeout=10).raise_for_status()
    case_id = submit(folder, "Is the nodule benign?", tmp_path / "r.txt")
    reader = wait_for("the case on a worklist", lambda: assigned_to(case_id), timeout=120)

    stack.down(["mailpit"])
    try:
        report_id = sign_case(case_id, reader)["report_id"]

        def in_pacs() -> list[str] | None:
            found: list[str] = httpx.post(
                f"{PACS}/tools/find",
                json={
                    "Level": "Series",
                    "Query": {"StudyInstanceUID": study_uid, "Modality": "DOC\\SR"},
                },
                timeout=10,
            ).json()
            return found if len(found) == 2 else None

        series = wait_for("the PDF and the SR in the hospital PACS", in_pacs, timeout=90)
        objects = {}
        for one in series:
            [instance] = httpx.get(f"{PACS}/series/{one}/instances", timeout=10).json()
            data = httpx.get(f"{PACS}/instances/{instance['ID']}/file", timeout=10).content
            ds = dcmread(io.BytesIO(data))
            objects[str(ds.Modality)] = ds
        assert sorted(objects) == ["DOC", "SR"]
        for ds in objects.values():  # beside the original study, the patient as the hospital has it
            assert ds.StudyInstanceUID == study_uid
            assert ds.PatientID == patient.patient_id
            assert str(ds.PatientName) == patient.name
        assert objects["DOC"].MIMETypeOfEncapsulatedDocument == "application/pdf"
        assert objects["SR"].VerificationFlag == "VERIFIED"
        studies = httpx.post(
            f"{PACS}/tools/find",
            json={"Level": "Study", "Query": {"StudyInstanceUID": study_uid}},
            timeout=10,
        ).json()
        assert len(studies) == 1

        def retried() -> dict[str, object] | None:
            row = email_delivery(report_id)
            return row if row and int(str(row["attempts"])) >= 1 else None

        row = wait_for("a failed email attempt", retried, timeout=60)
        assert row["status"] in ("pending", "sending")
    finally:
        stack.up(["mailpit"], timeout=60)

    [delivered] = wait_for("the email once the mail server is back",
                           lambda: mail.of_case(case_id) or None, timeout=120)  # fmt: skip
    assert f"X-Secondread-Case-Id: {case_id}".encode() in delivered
    final = email_delivery(report_id)
    assert final is not None and final["status"] == "delivered"
    assert int(str(final["attempts"])) >= 2


def test_a_worker_that_died_between_send_and_mark_causes_one_resend_with_the_same_key(
    tmp_path: Path,
) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    folder = write_study(tmp_path / "s", ct_study(patient, count=1, seed=uuid.uuid4().hex))
    (tmp_path / "r.txt").write_text("Impression: no acute finding.")
    case_id = submit(folder, "Any change?", tmp_path / "r.txt")
    reader = wait_for("the case on a worklist", lambda: assigned_to(case_id), timeout=120)
    report_id = sign_case(case_id, reader)["report_id"]
    wait_for("the first email", lambda: mail.of_case(case_id) or None, timeout=90)

    # As a worker that sent the email and died before marking it: the row is left "sending",
    # its claim running out in a second (what the real worker leaves, with a longer lease).
    with psycopg.connect(NotifySettings().db_dsn) as conn:
        conn.execute(
            "UPDATE deliveries SET status = 'sending', claimed_until = now() + interval '1 second'"
            " WHERE report_id = %s AND channel = 'email' AND recipient_role = 'physician'",
            (report_id,),
        )

    def resent() -> list[bytes] | None:
        found = mail.of_case(case_id)
        return found if len(found) >= 2 else None

    both = wait_for("the one resend after the claim ran out", resent, timeout=60)
    row = wait_for(
        "the resend marked",
        lambda: (r := email_delivery(report_id)) and r["status"] == "delivered" and r,
        timeout=30,
    )
    ids = {email.message_from_bytes(m)["Message-ID"].strip() for m in both}
    assert len(both) == 2  # sent once more ...
    assert ids == {f"<{report_id}.physician@secondread.invalid>"}  # ... as the same message
    assert int(str(row["attempts"])) == 2
    import time

    time.sleep(3)  # and nothing more
    assert len(mail.of_case(case_id)) == 2
