import json

from secondread_notify.compose import compose_email, message_id

REPORT = {
    "report_id": "r1",
    "case_id": "c1",
    "radiologist_id": "rad-a",
    "signed_at": "2026-01-01T00:00:00+00:00",
    "credentials": "MD",
    "findings": "Stable.",
    "statements": [{"statement": "Nodule", "verdict": "confirmed", "comment": ""}],
    "assessment": {"changes": [], "summary": "No change"},
    "recommendations": ["Follow-up in 12 months"],
}


def test_email_carries_report_signature_and_exact_canonical_form() -> None:
    canonical = json.dumps(REPORT).encode()
    msg = compose_email(
        report=REPORT,
        canonical=canonical,
        signature="c2ln",
        key_id="k1",
        to_name="Dr Who",
        to_email="who@example.org",
        mail_from="sr <sr@example.org>",
        role="physician",
        pdf=b"%PDF-1.4 test",
    )
    assert msg["To"] == "Dr Who <who@example.org>"
    assert msg["Message-ID"] == message_id("r1", "physician")
    body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "No change" in body and "Follow-up in 12 months" in body and "c2ln" in body
    attachments = {a.get_filename(): a.get_content() for a in msg.iter_attachments()}
    assert attachments["report.json"] == canonical
    assert attachments["report.pdf"] == b"%PDF-1.4 test"
