"""The delivery email: multipart text and HTML from Jinja2 templates (``templates/<language>/``),
pure composition, no I/O (RFC 5322 message via ``email.message``).

Templates exist in English (``en``) and German (``de``); a hospital's email channel names its
language. The body names the patient by initials only; the identity is on the cover page of the
attached PDF. HTML is autoescaped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from functools import cache
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

LANGUAGES: Final = ("en", "de")


def message_id(report_id: str, role: str) -> str:
    """A deterministic Message-ID, so a resent email is recognisably the same message."""
    return f"<{report_id}.{role}@secondread.invalid>"


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("secondread_notify", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def _recommendation(r: Any) -> str:
    if isinstance(r, dict):
        return str(r.get("text") or r.get("type", ""))
    return str(r)


def written_time(iso: str) -> str:
    """An ISO 8601 time as a person reads it, in UTC: ``2026-12-01 17:39 UTC`` (as it is when it
    is not ISO 8601)."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def view(report: dict[str, Any], *, key_id: str, signature: str, verify_url: str) -> dict[str, Any]:
    """What the templates show of a signed report (tolerant of the report's older shape:
    statements without numbers, recommendations as plain strings, no signer block)."""
    signer = report.get("signer") if isinstance(report.get("signer"), dict) else {}
    assessment = report.get("assessment") or {}
    return {
        "case_id": report["case_id"],
        "findings": report.get("findings", ""),
        "assessment": {
            "summary": assessment.get("summary", ""),
            "changes": list(assessment.get("changes", [])),
        },
        "statements": [
            {
                "number": s.get("number", i),
                "statement": s.get("statement", ""),
                "verdict": s.get("verdict") or "",
                "grade": s.get("grade") or "",
                "comment": s.get("comment") or "",
            }
            for i, s in enumerate(report.get("statements", []), 1)
        ],
        "recommendations": [_recommendation(r) for r in report.get("recommendations", [])],
        "signer": {
            "name": (signer or {}).get("display_name") or report.get("radiologist_id", ""),
            "credentials": (signer or {}).get("credentials") or report.get("credentials", ""),
        },
        "signed_at": written_time(str(report.get("signed_at", ""))),
        "key_id": key_id,
        "signature": signature,
        "verify_url": verify_url,
    }


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
    language: str = "en",
    verify_url: str = "",
) -> EmailMessage:
    """The email delivering a signed second opinion to ``to_email``."""
    if language not in LANGUAGES:
        raise ValueError(f"no email templates for language {language!r} (have {LANGUAGES})")
    env = _environment()
    context = {
        **view(report, key_id=key_id, signature=signature, verify_url=verify_url),
        "to_name": to_name,
        "patient_initials": patient_initials,
        "has_pdf": pdf is not None,
    }
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = f"{to_name} <{to_email}>"
    msg["Subject"] = env.get_template(f"{language}/subject.txt").render(context).strip()
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(str(report["report_id"]), role)
    msg["X-Secondread-Case-Id"] = str(report["case_id"])
    msg.set_content(env.get_template(f"{language}/body.txt").render(context))
    msg.add_alternative(env.get_template(f"{language}/body.html").render(context), subtype="html")
    if pdf is not None:
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment(canonical, maintype="application", subtype="json", filename="report.json")
    msg.add_attachment(
        json.dumps({"algorithm": "Ed25519", "key_id": key_id, "signature": signature}).encode(),
        maintype="application",
        subtype="json",
        filename="report.sig.json",
    )
    msg["Content-Language"] = language  # after the parts: set_content resets Content-* headers
    return msg
