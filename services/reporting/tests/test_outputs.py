import io
import json
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from secondread_reporting.outputs import (
    ENCAPSULATED_PDF_STORAGE,
    diagnostic_report,
    encapsulated_pdf,
    render_pdf,
)
from tests.reporting_documents import document, fhir_validate


def pdf_text(pdf: bytes, *args: str) -> str:
    if shutil.which("pdftotext") is None:  # poppler-utils, installed by `make up`
        pytest.fail("pdftotext is missing: run deploy/local/install.sh")
    done = subprocess.run(["pdftotext", *args, "-", "-"], input=pdf, capture_output=True,
                          check=True)  # fmt: skip
    return done.stdout.decode()


def test_pdf_leads_with_the_assessment_then_the_statement_table_and_the_signer() -> None:
    report = document()
    pdf = render_pdf(report, signature="c2ln", key_id="k1", fingerprint="ab12 cd34",
                     verification_url="http://api/v1/reports/r-1/verify")  # fmt: skip
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    flat = " ".join(text.split())
    assert "Assessment: Upgraded: suspicious for primary lung cancer" in flat
    assert flat.index("Assessment:") < flat.index("Findings") < flat.index("Original statement")
    # Unicode prints as itself (DejaVu), not as '?'
    assert "— spiculated, ≥ 8 mm; Ødegaard sign." in flat
    for cell in ("Verdict", "Grade", "Comment", "refined", "2a", "revised", "3b",
                 "suspicious, Lung-RADS 4B", "No pleural effusion."):  # fmt: skip
        assert cell in flat, cell
    layout = pdf_text(pdf, "-layout")
    row = next(line for line in layout.splitlines() if "No pleural effusion." in line)
    assert "confirmed" in row  # the verdict sits beside its statement
    assert flat.index("Follow-up PET-CT in 2 weeks") < flat.index("Dr. B. Okafor, MBBS, FRCR")
    assert "Key fingerprint (sha256): ab12 cd34" in flat
    assert "Verify: http://api/v1/reports/r-1/verify" in flat
    assert "Licence: GB" in flat and "Clinical Radiology" in flat


def test_encapsulated_pdf_is_valid_dicom_in_the_study_and_deterministic() -> None:
    report = document()
    pdf = render_pdf(report, signature="c2ln", key_id="k1")
    data = encapsulated_pdf(pdf, report=report, study_instance_uid="2.25.1", uid_root_entropy="r-1")
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.SOPClassUID == ENCAPSULATED_PDF_STORAGE
    assert ds.StudyInstanceUID == "2.25.1" and ds.PatientID == "SRabc"
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert ds.EncapsulatedDocument[: ds.EncapsulatedDocumentLength] == pdf
    again = encapsulated_pdf(
        pdf, report=report, study_instance_uid="2.25.1", uid_root_entropy="r-1"
    )
    assert pydicom.dcmread(io.BytesIO(again)).SOPInstanceUID == ds.SOPInstanceUID


def test_fhir_diagnostic_report() -> None:
    report = document()
    pdf = render_pdf(report, signature="c2ln", key_id="k1")
    fhir = diagnostic_report(report, pdf)
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["status"] == "final"
    assert fhir["conclusion"] == "Upgraded: suspicious for primary lung cancer"
    assert fhir["presentedForm"][0]["contentType"] == "application/pdf"
    assert fhir["code"]["coding"][0]["code"] == "18748-4"
    assert fhir["identifier"][0]["value"] == "r-1"
    assert fhir["performer"][0]["display"] == "Dr. B. Okafor (MBBS, FRCR)"
    assert fhir["basedOn"][0]["identifier"]["value"] == "c-1"


@pytest.mark.integration  # runs the HAPI FHIR validator (Java, jars from install.sh)
def test_fhir_diagnostic_report_passes_the_hapi_validator_as_r4(tmp_path: Path) -> None:
    report = document()
    pdf = render_pdf(report, signature="c2ln", key_id="k1")
    good = tmp_path / "report.fhir.json"
    good.write_text(json.dumps(diagnostic_report(report, pdf)))
    addendum = tmp_path / "addendum.fhir.json"
    addendum.write_text(json.dumps(diagnostic_report({**report, "kind": "addendum"}, pdf)))
    bogus = tmp_path / "bogus.fhir.json"  # the validator does catch what fhir.resources lets by
    bogus.write_text(json.dumps({**diagnostic_report(report, pdf), "status": "signed-ish"}))
    code, out = fhir_validate([good, addendum])
    assert code == 0, out
    assert " ERROR " not in out and " FATAL " not in out
    code, out = fhir_validate([bogus])
    assert code == 1 and "DiagnosticReport.status" in out
