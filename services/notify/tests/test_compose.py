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


SIGNED = {  # the report model with numbered, graded statements, typed recommendations, signer
    "report_id": "r2",
    "case_id": "c2",
    "radiologist_id": "rad-okafor",
    "credentials": "MBBS, FRCR",
    "signer": {"display_name": "Dr. B. Okafor", "credentials": "MBBS, FRCR"},
    "signed_at": "2026-01-01T00:00:00+00:00",
    "findings": "8 mm nodule <RUL> & stable adrenal.",
    "statements": [
        {"number": 1, "statement": "No nodule.", "verdict": "revised", "grade": "3b",
         "comment": "8 mm nodule RUL"},
        {"number": 2, "statement": "Adrenals normal.", "verdict": "confirmed", "grade": None,
         "comment": ""},
    ],
    "assessment": {"changes": ["diagnosis"], "summary": "Suspicious nodule missed"},
    "recommendations": [{"type": "follow_up_imaging", "text": "CT in 3 months"}],
}  # fmt: skip


def render(language: str):  # type: ignore[no-untyped-def]
    return compose_email(
        report=SIGNED,
        canonical=json.dumps(SIGNED).encode(),
        signature="c2ln",
        key_id="k1",
        to_name="Dr Who",
        to_email="who@example.org",
        mail_from="sr <sr@example.org>",
        role="physician",
        pdf=b"%PDF-1.4 test",
        patient_initials="A. Q.",
        language=language,
        verify_url="http://127.0.0.1:8004/v1/reports/r2/verify",
    )


def test_multipart_text_and_html_with_the_statement_table_and_initials_only() -> None:
    msg = render("en")
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "(patient A. Q.)" in text and "cover page identifies the patient" in text
    assert "1. [revised, RADPEER 3b] No nodule. -- 8 mm nodule RUL" in text
    assert "2. [confirmed] Adrenals normal." in text
    assert "  - CT in 3 months" in text and "Dr. B. Okafor (MBBS, FRCR)" in text
    assert "at 2026-01-01 00:00 UTC." in text  # the signing time as a person reads it
    assert "Verify: http://127.0.0.1:8004/v1/reports/r2/verify" in text
    assert "<td>3b</td>" in html and "Suspicious nodule missed" in html
    assert "8 mm nodule &lt;RUL&gt; &amp; stable adrenal." in html  # autoescaped
    assert msg["Subject"] == "Second opinion for case c2" and msg["Content-Language"] == "en"


def test_a_second_language() -> None:
    msg = render("de")
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert msg["Subject"] == "Zweitmeinung zu Fall c2" and msg["Content-Language"] == "de"
    assert "Guten Tag Dr Who" in text and "Beurteilung: Suspicious nodule missed" in text
    assert "Empfehlungen:" in text and "Prüfen: http" in text


def test_an_unknown_language_is_a_clear_error() -> None:
    import pytest

    with pytest.raises(ValueError, match="no email templates for language 'fr'"):
        render("fr")
