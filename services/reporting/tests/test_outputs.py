import io
import shutil
import subprocess

import pydicom
import pytest

from secondread_reporting.outputs import (
    ENCAPSULATED_PDF_STORAGE,
    diagnostic_report,
    encapsulated_pdf,
    render_pdf,
)

REPORT = {
    "report_id": "r-1",
    "case_id": "c-1",
    "patient_pseudonym": "SRabc",
    "study_instance_uids": ["2.25.1"],
    "radiologist_id": "rad-okafor",
    "signed_at": "2026-11-28T05:00:00+00:00",
    "algorithm": "Ed25519",
    "key_id": "k1",
    "findings": "8 mm solid nodule in the right upper lobe — stable.",
    "statements": [{"statement": "nodule RUL", "verdict": "refined", "comment": "8 mm"}],
    "assessment": {"changes": ["severity"], "summary": "Suspicious nodule"},
    "recommendations": ["PET-CT"],
    "credentials": "MD",
}


def test_pdf_holds_the_report_text() -> None:
    pdf = render_pdf(REPORT, signature="c2ln", key_id="k1")
    assert pdf.startswith(b"%PDF")
    if shutil.which("pdftotext") is None:  # poppler-utils, installed by `make up`
        pytest.fail("pdftotext is missing: run deploy/local/install.sh")
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    for expected in (
        "Suspicious nodule",
        "8 mm solid nodule in the right upper lobe - stable",  # the em dash, mapped
        "PET-CT",
        "rad-okafor",
        "SRabc",
    ):
        assert expected in text


def test_encapsulated_pdf_is_valid_dicom_in_the_study_and_deterministic() -> None:
    pdf = render_pdf(REPORT, signature="c2ln", key_id="k1")
    data = encapsulated_pdf(pdf, report=REPORT, study_instance_uid="2.25.1", uid_root_entropy="r-1")
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.SOPClassUID == ENCAPSULATED_PDF_STORAGE
    assert ds.StudyInstanceUID == "2.25.1" and ds.PatientID == "SRabc"
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert ds.EncapsulatedDocument[: ds.EncapsulatedDocumentLength] == pdf
    again = encapsulated_pdf(
        pdf, report=REPORT, study_instance_uid="2.25.1", uid_root_entropy="r-1"
    )
    assert pydicom.dcmread(io.BytesIO(again)).SOPInstanceUID == ds.SOPInstanceUID


def test_fhir_diagnostic_report() -> None:
    pdf = render_pdf(REPORT, signature="c2ln", key_id="k1")
    fhir = diagnostic_report(REPORT, pdf)
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["status"] == "final"
    assert fhir["conclusion"] == "Suspicious nodule"
    assert fhir["presentedForm"][0]["contentType"] == "application/pdf"
    assert fhir["code"]["coding"][0]["code"] == "18748-4"
