"""The draft and addendum models: what a request body may hold."""

import pytest
from pydantic import ValidationError

from secondread_reporting.api import DeclineBody
from secondread_reporting.report import AddendumContent, DraftContent


@pytest.mark.parametrize(
    ("model", "body", "where"),
    [
        (DraftContent, {"findings": "8 mm\0"}, ("findings",)),
        (DraftContent, {"assessment": {"summary": "\0"}}, ("assessment", "summary")),
        (
            DraftContent,
            {"statements": [{"number": 1, "comment": "a\0b"}]},
            ("statements", 0, "comment"),
        ),
        (AddendumContent, {"text": "late\0"}, ("text",)),
        (DeclineBody, {"reason": "busy\0"}, ("reason",)),
    ],
)
def test_a_nul_character_is_refused_naming_the_field(model, body, where) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL keeps no NUL: a draft or decline holding one was a 500 at the insert
    (Schemathesis' strings); now it is a 422 naming the field."""
    with pytest.raises(ValidationError, match="NUL character") as exc:
        model.model_validate(body)
    assert exc.value.errors()[0]["loc"] == where


def test_text_without_nul_is_kept_as_it_is() -> None:
    draft = DraftContent.model_validate({"findings": "Ünïcode — fine", "statements": []})
    assert draft.findings == "Ünïcode — fine"
