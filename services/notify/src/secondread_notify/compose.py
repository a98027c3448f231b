"""The delivery email: pure composition, no I/O (RFC 5322 message via ``email.message``)."""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any


def message_id(report_id: str, role: str) -> str:
    """A deterministic Message-ID, so a resent email is recognisably the same message."""
    return f"<{report_id}.{role}@secondread.invalid>"


def compose_email(
    *,
    report: dict[str, Any],
    canonical: bytes,
    signature: str,
    key_id: str,
    to_name: str,
    to_email: str,
    mail_from: str,
    role: str,
    pdf: bytes | None = None,
    patient_initials: str = "",
) -> EmailMessage:
    """The email delivering a signed second opinion to ``to_email``.

    The body names the patient by initials only (``patient_initials``); the full identity is on
    the cover page of the attached PDF.
    """
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = f"{to_name} <{to_email}>"
    msg["Subject"] = f"Second opinion for case {report['case_id']}"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(str(report["report_id"]), role)
    msg["X-Secondread-Case-Id"] = str(report["case_id"])
    statements = "\n".join(
        f"  - [{s['verdict']}] {s['statement']}"
        + (f" — {s['comment']}" if s.get("comment") else "")
        for s in report.get("statements", [])
    )
    recs = "\n".join(f"  - {r}" for r in report.get("recommendations", []))
    changes = ", ".join(report["assessment"].get("changes", [])) or "none"
    about = f" (patient {patient_initials})" if patient_initials else ""
    filing = "The attached PDF's cover page identifies the patient for filing.\n" if pdf else ""
    body = (
        f"Dear {to_name},\n\n"
        f"A signed second-opinion report is ready for case {report['case_id']}{about}.\n"
        f"{filing}\n"
        f"Assessment: {report['assessment']['summary']}\n"
        f"Changes to diagnosis/severity/staging: {changes}\n\n"
        f"Findings:\n{report['findings']}\n\n"
        f"Original report statements:\n{statements or '  (none reviewed)'}\n\n"
        f"Recommendations:\n{recs or '  (none)'}\n\n"
        f"Signed by {report['radiologist_id']} ({report['credentials']})"
        f" at {report['signed_at']}.\n"
        f"Signature (Ed25519, key {key_id}): {signature}\n"
        "The attached JSON is the exact signed canonical form.\n"
    )
    msg.set_content(body)
    if pdf is not None:
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment(canonical, maintype="application", subtype="json", filename="report.json")
    msg.add_attachment(
        json.dumps({"algorithm": "Ed25519", "key_id": key_id, "signature": signature}).encode(),
        maintype="application",
        subtype="json",
        filename="report.sig.json",
    )
    return msg
