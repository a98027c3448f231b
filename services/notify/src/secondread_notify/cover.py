"""The delivery copy: a cover page that restores the patient's identity, in front of the signed
report's PDF, which is left exactly as signed. Pure: data in, PDF bytes out."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from secondread_notify.identity import PatientIdentity


@dataclass(frozen=True)
class Signer:
    name: str
    credentials: str
    key_id: str
    key_fingerprint: str
    """Empty when the signed report does not state it (the key list maps the id to the key)."""
    verify_url: str


def signer_of(report: dict[str, Any], key_id: str, verify_url: str) -> Signer:
    """The signer block of a signed report (its ``signer`` object where the report model has
    one, else its radiologist id and credentials)."""
    found = report.get("signer")
    block: dict[str, Any] = found if isinstance(found, dict) else {}
    name = (
        block.get("display_name")
        or report.get("radiologist_name")
        or report.get("radiologist_id", "")
    )
    return Signer(
        name=str(name),
        credentials=str(block.get("credentials") or report.get("credentials", "")),
        key_id=key_id,
        key_fingerprint=str(block.get("key_fingerprint") or report.get("key_fingerprint", "")),
        verify_url=verify_url,
    )


def _latin1(text: str) -> str:
    """fpdf2's core fonts are Latin-1: anything else is written as '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def cover_page(
    identity: PatientIdentity, *, case_id: str, report_id: str, assessment: str, signer: Signer
) -> bytes:
    """One A4 page: the patient as the hospital knows them, the case, the signer and how to
    verify the signature."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Second opinion: delivery copy", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0,
        5,
        "This cover page restores the patient's identity for filing. The pages after it are the "
        "signed report exactly as signed, under the pseudonym used during the review.",
        align="L",
    )
    pdf.ln(3)
    rows = [
        ("Patient", identity.name or "(not given)"),
        ("Date of birth", identity.birth_date_written or "(not given)"),
        ("Sex", identity.sex or "-"),
        ("Patient ID (MRN)", identity.patient_id),
        ("Issuer", identity.issuer or "-"),
        ("Accession number", identity.accession_number or "-"),
        ("Study date", identity.study_date_written or "-"),
        ("Study Instance UID", identity.study_instance_uid),
        ("Case", case_id),
        ("Report", report_id),
    ]
    for label, value in rows:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(45, 7, label)
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 7, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, 7, _latin1(f"Assessment: {assessment}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(
        0,
        6,
        _latin1(
            f"Signed by {signer.name}, {signer.credentials}. Ed25519 signature, key {signer.key_id}"
            + (f" (fingerprint {signer.key_fingerprint})." if signer.key_fingerprint else ".")
        ),
        new_x="LMARGIN",
        new_y="NEXT",
        align="L",
    )
    pdf.set_font("Courier", "", 9)
    pdf.multi_cell(0, 5, _latin1(f"Verify: {signer.verify_url}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def delivery_copy(cover: bytes, signed_pdf: bytes | None) -> bytes:
    """The cover page followed by every page of the signed PDF, unchanged."""
    writer = PdfWriter()
    for source in (cover, signed_pdf):
        if source:
            for page in PdfReader(io.BytesIO(source)).pages:
                writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
