"""The portal's case form: ingest's intake rules, with each error naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from fpdf import FPDF

from secondread_ingest.portal_service import FormInvalid, report_text_from_pdf, validate_intake


def form(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "clinical_question": "Is the nodule new?",
        "original_report": "8 mm nodule.",
        "urgency": "routine",
        "referring_physician": {"name": "Dr Ada", "email": "ada@example.org"},
        "consent": True,
    }
    base.update(over)
    return base


def errors(data: object) -> dict[str, str]:
    with pytest.raises(FormInvalid) as exc:
        validate_intake(data)
    assert exc.value.code == "bad_intake" and exc.value.status == 422
    for field in exc.value.fields:
        assert field in exc.value.message  # the one-line message names every field too
    return exc.value.fields


def test_a_complete_form_is_an_intake() -> None:
    intake = validate_intake(form(urgency="urgent", patient_email="p@example.org",
                                  patient_delivery_consent=True))  # fmt: skip
    assert intake.urgency == "urgent" and intake.patient_delivery_consent
    assert intake.referring_physician.email == "ada@example.org"


def test_every_missing_field_is_named_in_the_forms_order() -> None:
    fields = errors({"referring_physician": {"name": "", "email": ""}, "consent": False})
    assert list(fields) == [
        "clinical_question",
        "referring_physician.name",
        "referring_physician.email",
        "consent",
    ]
    assert fields["clinical_question"] == "required"
    assert fields["referring_physician.email"] == "the physician's email address is required"
    assert "consent" in fields["consent"]


@pytest.mark.parametrize(
    ("over", "field", "says"),
    [
        ({"referring_physician": {"name": "Dr A", "email": "nope"}}, "referring_physician.email",
         "not a valid email address"),
        ({"urgency": "yesterday"}, "urgency", "'routine' or 'urgent'"),
        ({"patient_email": "x@"}, "patient_email", "not a valid email address"),
        ({"patient_delivery_consent": True}, "patient_email", "needs patient_email"),
        ({"consent": False}, "consent", "only with the patient's consent"),
        ({"clinical_question": ""}, "clinical_question", "required"),
        ({"fetch_priors": True}, "fetch_priors", "not a field of the upload portal's form"),
        ({"referring_physician": None}, "referring_physician", "valid dictionary"),
    ],
)  # fmt: skip
def test_a_wrong_field_is_named(over: dict[str, Any], field: str, says: str) -> None:
    fields = errors(form(**over))
    assert says in fields[field], fields


def test_a_form_that_is_not_an_object_is_refused() -> None:
    assert errors(["clinical_question"]) == {"intake": "the form must be a JSON object"}


def pdf(text: str | None) -> bytes:
    doc = FPDF()
    doc.add_page()
    if text:
        doc.set_font("helvetica", size=12)
        doc.cell(text=text)
    return bytes(doc.output())


def test_the_report_pdf_gives_its_text() -> None:
    assert "8 mm nodule in the right upper lobe" in report_text_from_pdf(
        pdf("8 mm nodule in the right upper lobe")
    )


@pytest.mark.parametrize(
    ("data", "says"),
    [(b"GIF89a", "not a PDF"), (None, "no text layer"), (b"%PDF-1.7 broken", "cannot be read")],
)
def test_a_report_pdf_without_text_names_the_field(data: bytes | None, says: str) -> None:
    with pytest.raises(FormInvalid) as exc:
        report_text_from_pdf(pdf(None) if data is None else data)
    assert says in exc.value.fields["original_report_pdf"]


def test_outside_local_the_portal_refuses_demo_addresses_and_a_missing_link_key() -> None:
    from pydantic import SecretStr

    from secondread_ingest.portal import check_settings, link_key
    from secondread_ingest.settings import IngestSettings
    from secondread_shared.secrets import MissingSecretError

    prod = {"environment": "production", "stack_dir": "/nonexistent"}
    with pytest.raises(ValueError, match="SECONDREAD_OIDC_ISSUER is the local demo"):
        check_settings(IngestSettings(**prod))
    real = {**prod, "oidc_issuer": "https://id.example.org/realms/secondread"}
    with pytest.raises(ValueError, match="SECONDREAD_PORTAL_PUBLIC_URL is a local address"):
        check_settings(IngestSettings(**real))
    check_settings(IngestSettings(**real, portal_public_url="https://portal.example.org/portal/"))
    with pytest.raises(MissingSecretError, match="SECONDREAD_PORTAL_LINK_KEY"):
        link_key(IngestSettings(**real))
    assert link_key(IngestSettings(**real, portal_link_key=SecretStr("k1"))) == b"k1"
