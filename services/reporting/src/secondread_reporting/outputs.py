"""The signed report's outputs: a PDF, the same PDF as a DICOM Encapsulated PDF instance for the
archive, and a FHIR R4B DiagnosticReport. Pure: bytes and dicts in, bytes and dicts out.

- DICOM: Encapsulated PDF Storage (PS3.3 A.45.1; IOD modules Patient, General Study,
  Encapsulated Document Series, General Equipment, SC Equipment, Encapsulated Document,
  SOP Common), in the study it reads, under the patient's pseudonym.
- FHIR: DiagnosticReport (built with ``fhir.resources`` R4B, whose DiagnosticReport is R4's; the
  tests validate it as R4 with the HAPI FHIR validator): ``status`` final (``appended`` for an
  addendum), the PDF in ``presentedForm``, the assessment in ``conclusion``, the report id in
  ``identifier`` and the case (the request) in ``basedOn``.

Everything here carries pseudonyms only (clear zone); notify restores the identity on delivery.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime
from pathlib import Path
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fpdf import FPDF
from pydicom.uid import UID, generate_uid

from secondread_shared.dicom import new_instance

ENCAPSULATED_PDF_STORAGE = UID("1.2.840.10008.5.1.4.1.1.104.1")
LOINC_IMAGING_REPORT = ("18748-4", "Diagnostic imaging study")


FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
"""DejaVu Sans (Debian ``fonts-dejavu-core``): Latin, Greek, Cyrillic, arrows and math symbols,
embedded as a subset, so no character of a report prints as '?'."""


def _fonts(pdf: FPDF) -> str:
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.add_font("DejaVuMono", "", str(FONT_DIR / "DejaVuSansMono.ttf"))
    return "DejaVu"


def render_pdf(
    report: dict[str, Any],
    *,
    signature: str,
    key_id: str,
    fingerprint: str = "",
    verification_url: str = "",
) -> bytes:
    """The signed report as PDF: the assessment first and prominent, then a table of the
    original statements beside the verdicts, grades and comments, the recommendations, and the
    signer block with the key fingerprint and the verification URL."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    font = _fonts(pdf)
    pdf.add_page()
    is_addendum = report.get("kind") == "addendum"
    title = "Addendum to a second-opinion report" if is_addendum else "Second-opinion report"
    pdf.set_title(title)
    pdf.set_creation_date(datetime.fromisoformat(report["signed_at"]))

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font(font, "B", 12)
        pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(font, "", 10)

    def para(text: str) -> None:
        pdf.multi_cell(0, 5, text, align="L", new_x="LMARGIN", new_y="NEXT")

    pdf.set_font(font, "B", 16)
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(font, "", 9)
    para(f"Case {report['case_id']} · patient (pseudonym) {report['patient_pseudonym']}")
    para(f"Report {report['report_id']}")
    if is_addendum and report.get("amends"):
        amends = report["amends"]
        para(f"Amends report {amends['report_id']} (sha256 {amends['sha256']})")

    a = report["assessment"]
    pdf.ln(3)
    pdf.set_fill_color(235, 240, 250)
    pdf.set_font(font, "B", 13)
    pdf.multi_cell(0, 7, f"Assessment: {a['summary']}", border=1, fill=True,
                   new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.set_font(font, "", 10)

    def yes_no(flag: object) -> str:
        return "yes" if flag else "no"

    para(
        f"Diagnosis changed: {yes_no(a.get('diagnosis_changed'))} · "
        f"severity changed: {yes_no(a.get('severity_changed'))} · "
        f"staging changed: {yes_no(a.get('staging_changed'))}"
    )
    if report.get("clinical_question"):
        heading("Clinical question")
        para(report["clinical_question"])
    heading("Addendum" if is_addendum else "Findings")
    para(report["findings"])
    if report.get("statements"):
        heading("The original report, statement by statement")
        pdf.set_font(font, "", 9)
        with pdf.table(col_widths=(8, 70, 20, 12, 60), text_align="LEFT") as table:
            table.row(["#", "Original statement", "Verdict", "Grade", "Comment"])
            for st in report["statements"]:
                table.row([str(st["number"]), st["statement"], st["verdict"] or "",
                           st.get("grade") or "", st.get("comment") or ""])  # fmt: skip
        pdf.set_font(font, "", 10)
    heading("Recommendations")
    for rec in report.get("recommendations") or []:
        para(f"• {rec['text'] if isinstance(rec, dict) else rec}")
    heading("Signed by")
    signer = report.get("signer") or {}
    name = signer.get("display_name") or report.get("radiologist_id", "")
    creds = signer.get("credentials") or report.get("credentials", "")
    para(f"{name}{', ' + creds if creds else ''}")
    if signer.get("certifications"):
        para("Board certifications: " + "; ".join(signer["certifications"]))
    if signer.get("licence"):
        para(f"Licence: {signer['licence']}")
    para(f"Signed at {report['signed_at']} (Ed25519, key {key_id})")
    if fingerprint:
        para(f"Key fingerprint (sha256): {fingerprint}")
    if verification_url:
        para(f"Verify: {verification_url}")
    pdf.set_font("DejaVuMono", "", 7)
    para(f"Signature over the RFC 8785 canonical JSON: {signature}")
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
    ds = new_instance(ENCAPSULATED_PDF_STORAGE, sop_uid)
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


def _signer_line(report: dict[str, Any]) -> str:
    signer = report.get("signer") or {}
    name = signer.get("display_name") or report["radiologist_id"]
    creds = signer.get("credentials") or report.get("credentials", "")
    return f"{name} ({creds})" if creds else str(name)


def diagnostic_report(report: dict[str, Any], pdf: bytes, *, pdf_url: str = "") -> dict[str, Any]:
    """A FHIR R4B DiagnosticReport of the signed report, validated by ``fhir.resources``."""
    code, display = LOINC_IMAGING_REPORT
    is_addendum = report.get("kind") == "addendum"
    summary = html.escape(str(report["assessment"]["summary"]))
    narrative = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p><b>Assessment:</b> '
        f"{summary}</p><p>Signed by {html.escape(_signer_line(report))}, "
        f"{html.escape(str(report['signed_at']))}</p></div>"
    )
    resource = DiagnosticReport.model_validate(
        {
            "resourceType": "DiagnosticReport",
            "id": report["report_id"],
            "text": {"status": "generated", "div": narrative},
            "identifier": [{"system": "urn:secondread:report", "value": report["report_id"]}],
            "basedOn": [
                {
                    "type": "ServiceRequest",
                    "identifier": {"system": "urn:secondread:case", "value": report["case_id"]},
                    "display": "second-opinion request",
                }
            ],
            # an addendum appends to the report it amends (R4 diagnostic-report-status)
            "status": "appended" if is_addendum else "final",
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
            "performer": [{"display": _signer_line(report)}],
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
