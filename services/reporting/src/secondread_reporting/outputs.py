"""The signed report's outputs: a PDF, the same PDF as a DICOM Encapsulated PDF instance for the
archive, and a FHIR R4B DiagnosticReport. Pure: bytes and dicts in, bytes and dicts out.

- DICOM: Encapsulated PDF Storage (PS3.3 A.45.1; IOD modules Patient, General Study,
  Encapsulated Document Series, General Equipment, SC Equipment, Encapsulated Document,
  SOP Common), in the study it reads, under the patient's pseudonym.
- FHIR: DiagnosticReport (R4B), ``status`` final, the PDF in ``presentedForm``, the assessment
  in ``conclusion``.

Everything here carries pseudonyms only (clear zone); notify restores the identity on delivery.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fpdf import FPDF
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

ENCAPSULATED_PDF_STORAGE = UID("1.2.840.10008.5.1.4.1.1.104.1")
LOINC_IMAGING_REPORT = ("18748-4", "Diagnostic imaging study")


_PUNCTUATION = str.maketrans(
    {"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"',
     "\u201d": '"', "\u2026": "...", "\u2265": ">=", "\u2264": "<=", "\u00a0": " "}
)  # fmt: skip


def _latin1(text: str) -> str:
    """fpdf2's core fonts are Latin-1: common typography is mapped to ASCII, anything else
    outside Latin-1 becomes '?' rather than failing."""
    return text.translate(_PUNCTUATION).encode("latin-1", "replace").decode("latin-1")


def render_pdf(report: dict[str, Any], *, signature: str, key_id: str) -> bytes:
    """A one-document PDF of the signed report (the canonical JSON is what is signed)."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_title("Second-opinion radiology report")
    pdf.set_creation_date(datetime.fromisoformat(report["signed_at"]))

    def heading(text: str) -> None:
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)

    def para(text: str) -> None:
        pdf.multi_cell(0, 5, _latin1(text), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Second-opinion radiology report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    para(f"Case: {report['case_id']}")
    para(f"Patient (pseudonym): {report['patient_pseudonym']}")
    para(f"Report: {report['report_id']}")
    heading("Assessment")
    changes = ", ".join(report["assessment"].get("changes", [])) or "none"
    para(f"{report['assessment']['summary']} (changes to diagnosis/severity/staging: {changes})")
    heading("Findings")
    para(report["findings"])
    if report.get("statements"):
        heading("Original report, statement by statement")
        for st in report["statements"]:
            comment = f": {st['comment']}" if st.get("comment") else ""
            para(f"[{st['verdict']}] {st['statement']}{comment}")
    if report.get("recommendations"):
        heading("Recommendations")
        for rec in report["recommendations"]:
            para(f"- {rec}")
    heading("Signature")
    para(
        f"Signed by {report['radiologist_id']} ({report['credentials']}) at {report['signed_at']}."
    )
    para(f"Ed25519 key {key_id}, signature over the canonical JSON:")
    pdf.set_font("Courier", "", 8)
    para(signature)
    return bytes(pdf.output())


def encapsulated_pdf(
    pdf: bytes,
    *,
    report: dict[str, Any],
    study_instance_uid: str,
    uid_root_entropy: str,
) -> bytes:
    """The PDF as a DICOM Encapsulated PDF instance in ``study_instance_uid`` (Part 10 bytes).

    UIDs derive from ``uid_root_entropy`` (the report id), so a retried sign call produces the
    same instance, which the archive stores once.
    """
    signed = datetime.fromisoformat(report["signed_at"])
    series_uid = generate_uid(entropy_srcs=[uid_root_entropy, "series"])
    sop_uid = generate_uid(entropy_srcs=[uid_root_entropy, "instance"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = f"{report['patient_pseudonym']}^ANON"
    ds.PatientID = report["patient_pseudonym"]
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = study_instance_uid
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 9001
    ds.SeriesDescription = "Second-opinion report"
    ds.Manufacturer = "secondread"
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    ds.ContentDate = signed.strftime("%Y%m%d")
    ds.ContentTime = signed.strftime("%H%M%S")
    ds.AcquisitionDateTime = signed.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "NO"  # pseudonyms only
    ds.DocumentTitle = "Second-opinion radiology report"
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\x00" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def diagnostic_report(report: dict[str, Any], pdf: bytes, *, pdf_url: str = "") -> dict[str, Any]:
    """A FHIR R4B DiagnosticReport of the signed report, validated by ``fhir.resources``."""
    code, display = LOINC_IMAGING_REPORT
    resource = DiagnosticReport.model_validate(
        {
            "resourceType": "DiagnosticReport",
            "id": report["report_id"],
            "identifier": [{"system": "urn:secondread:report", "value": report["report_id"]}],
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                            "code": "RAD",
                            "display": "Radiology",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "subject": {
                "identifier": {
                    "system": "urn:secondread:pseudonym",
                    "value": report["patient_pseudonym"],
                }
            },
            "issued": report["signed_at"],
            "performer": [{"display": f"{report['radiologist_id']} ({report['credentials']})"}],
            "conclusion": report["assessment"]["summary"],
            "presentedForm": [
                {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(pdf).decode(),
                    "title": "Second-opinion radiology report",
                    **({"url": pdf_url} if pdf_url else {}),
                }
            ],
        }
    )
    data: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return data
