"""The delivery copy: the identity read from the case's own header, a cover page in front of the
signed PDF (checked with pdftotext), and the DICOM objects (the Encapsulated PDF and the SR) sent
into the real hospital PACS (the local stack's second Orthanc) beside the original study, once per
report version, validated by dciodvfy."""

from __future__ import annotations

import io
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fpdf import FPDF
from pydicom import dcmread

from secondread_notify.channels.base import Message
from secondread_notify.channels.dicom import (
    DicomChannel,
    DicomSender,
    delivery_sr,
    encapsulated_pdf,
)
from secondread_notify.cover import cover_page, delivery_copy, signer_of
from secondread_notify.identity import PatientIdentity, read_identity, written_name
from secondread_shared.events import ObjectRef, ReportSigned
from tests.e2e.conftest import running_stack  # noqa: F401  (the fixture: starts the stack)
from tests.reporting_documents import dciodvfy_errors, document
from tests.synthetic import Patient, ct_study

PACS = "http://127.0.0.1:8043"


def signed_pdf(text: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(0, 10, text)
    return bytes(pdf.output())


def identity(patient: Patient | None = None) -> PatientIdentity:
    data = ct_study(patient or Patient(), count=1, size=4)[0]
    return read_identity(data, default_issuer="demo-hospital")


def test_the_identity_comes_from_the_case_header() -> None:
    ident = identity()
    assert ident.name == "Alonso Quixote" and ident.dicom_name == "Quixote^Alonso"
    assert ident.patient_id == "MRN-4242-7781" and ident.issuer == "demo-hospital"
    assert ident.birth_date_written == "1961-03-15" and ident.accession_number == "ACC-99120"
    assert ident.initials == "A. Q."
    assert written_name("Panza^Sancho^^Dr") == "Dr Sancho Panza"
    with pytest.raises(ValueError, match="not a DICOM"):
        read_identity(b"nope")


def test_the_cover_page_restores_the_identity_and_the_signed_pages_follow(tmp_path: Path) -> None:
    ident = identity()
    report = {"signer": {"display_name": "Dr. B. Okafor", "credentials": "MBBS, FRCR"}}
    signer = signer_of(report, "key-7", "http://127.0.0.1:8004/v1/reports/r1/verify")
    cover = cover_page(ident, case_id="c1", report_id="r1", assessment="No change", signer=signer)
    copy = delivery_copy(cover, signed_pdf("SIGNED REPORT BODY SR1234"))
    (tmp_path / "copy.pdf").write_bytes(copy)
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "copy.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cover_text, signed_text = text.split("\f")[:2]
    for value in (
        "Alonso Quixote",
        "1961-03-15",
        "MRN-4242-7781",
        "ACC-99120",
        "key-7",
        "Dr. B. Okafor, MBBS, FRCR",
        "/v1/reports/r1/verify",
        "Assessment: No change",
    ):
        assert value in cover_text, value  # fmt: skip
    assert "SIGNED REPORT BODY SR1234" in signed_text


def report_signed(report_id: str) -> ReportSigned:
    return ReportSigned(
        case_id="c1",
        producer="reporting",
        report_id=report_id,
        radiologist_id="rad",
        signed_at=datetime.now(UTC),
        key_id="k",
        signature="c2ln",
        report=ObjectRef(bucket="b", key="k", sha256="0" * 64, size=1),
        assessment="No change",
    )


def test_the_dicom_object_validates(tmp_path: Path) -> None:
    ds = encapsulated_pdf(
        signed_pdf("x"), identity(), report_id="r1", title="t", signed_at=datetime.now(UTC)
    )
    ds.save_as(tmp_path / "doc.dcm", enforce_file_format=True)
    done = subprocess.run(["dciodvfy", str(tmp_path / "doc.dcm")], capture_output=True, text=True)
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert not errors, "\n".join(errors)


def test_the_sr_is_in_the_hospital_study_with_an_original_instance_as_evidence(
    tmp_path: Path,
) -> None:
    original = ct_study(Patient(), count=1, size=4)[0]
    source = dcmread(io.BytesIO(original))
    ident = read_identity(original, default_issuer="demo-hospital")
    sr = delivery_sr(document(), original, ident, report_id="r-1")
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.PatientID == source.PatientID and sr.PatientName == source.PatientName
    assert sr.IssuerOfPatientID == "demo-hospital" and sr.SeriesNumber == 9902
    [evidence] = sr.CurrentRequestedProcedureEvidenceSequence
    [series] = evidence.ReferencedSeriesSequence
    assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    again = delivery_sr(document(), original, ident, report_id="r-1")
    other = delivery_sr(document(), original, ident, report_id="r-2")
    assert (again.SeriesInstanceUID, again.SOPInstanceUID) == (
        sr.SeriesInstanceUID,
        sr.SOPInstanceUID,
    )
    assert other.SOPInstanceUID != sr.SOPInstanceUID  # an addendum is a new instance
    buf = io.BytesIO()
    sr.save_as(buf, enforce_file_format=True)
    assert dciodvfy_errors(buf.getvalue(), tmp_path) == []


@pytest.mark.integration
@pytest.mark.usefixtures("running_stack")
async def test_the_report_arrives_beside_the_original_study_in_the_hospital_pacs() -> None:
    patient = Patient(patient_id=f"MRN-PACS-{uuid.uuid4().hex[:8]}")
    original = ct_study(patient, count=1, size=4)[0]
    ident = read_identity(original, default_issuer="demo-hospital")
    report_id = f"r-{uuid.uuid4().hex[:12]}"
    message = Message(
        event=report_signed(report_id),
        canonical=b"{}",
        report=document(),
        pdf=None,
        fhir=None,
        idempotency_key=f"{report_id}.dicom.physician",
        role="physician",
        recipient_name="",
        recipient_address="",
        identity=ident,
        delivery_pdf=signed_pdf("delivery copy"),
        evidence=original,
    )
    sender = DicomSender(DicomChannel(ae_title="DEMO_PACS", host="127.0.0.1", port=4243))
    async with httpx.AsyncClient(base_url=PACS, timeout=10) as pacs:
        (await pacs.post("/instances", content=original)).raise_for_status()  # the hospital's own
        outcome = await sender.send(message)
        await sender.send(message)  # a resend of the same report version: stored once
        found = (
            await pacs.post(
                "/tools/find",
                json={
                    "Level": "Instance",
                    "Query": {"StudyInstanceUID": ident.study_instance_uid},
                    "Expand": True,
                },
            )
        ).json()
        by_modality = {}
        for instance in found:
            data = (await pacs.get(f"/instances/{instance['ID']}/file")).content
            ds = dcmread(io.BytesIO(data))
            by_modality[str(ds.Modality)] = ds
        studies = (
            await pacs.post(
                "/tools/find",
                json={"Level": "Study", "Query": {"StudyInstanceUID": ident.study_instance_uid}},
            )
        ).json()
        for instance in found:
            await pacs.delete(f"/instances/{instance['ID']}")
    assert "C-STORE Encapsulated PDF and SR" in outcome.detail
    assert sorted(by_modality) == ["CT", "DOC", "SR"]  # one each: the resend stored nothing new
    assert len(studies) == 1  # beside the original, in the same study of the PACS
    for ds in (by_modality["DOC"], by_modality["SR"]):
        assert ds.PatientID == patient.patient_id and str(ds.PatientName) == "Quixote^Alonso"
        assert ds.StudyInstanceUID == ident.study_instance_uid
    assert by_modality["DOC"].MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert by_modality["SR"].ContentTemplateSequence[0].TemplateIdentifier == "2000"
