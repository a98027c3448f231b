from datetime import date, timedelta

import pytest

from secondread_deidentify.engine import Engine
from secondread_deidentify.scrub import (
    ADDRESS,
    DOB,
    EMAIL,
    ID,
    NAME,
    PHONE,
    KnownIdentifiers,
    Scrubber,
    scrub_text,
)
from tests.synthetic import Patient, ct_study

KNOWN = KnownIdentifiers(
    names=("Quixote^Alonso", "Dr Referrer Panza"),
    ids=("MRN-4242-7781", "ACC-99120"),
    birth_date="19610315",
    phones=("+34-555-0100",),
    addresses=("12 Windmill Lane, La Mancha",),
    emails=("referrer@example.org",),
)


def scrub(text: str, shift: int | None = -10, dayfirst: bool = False) -> str:
    """The known-identifier pass alone (the detector has its tests in test_phi.py)."""
    return scrub_text(text, KNOWN, shift_days=shift, dayfirst=dayfirst, detect=False)


@pytest.mark.parametrize(
    "text",
    ["Alonso Quixote", "QUIXOTE, ALONSO", "quixote alonso", "Quixote^Alonso", "Mr. Quixote"],
)
def test_names_in_any_order_and_case(text: str) -> None:
    out = scrub(f"Patient {text} has a nodule.")
    assert "quixote" not in out.lower() and "alonso" not in out.lower()
    assert NAME in out and "nodule" in out


def test_words_containing_a_name_are_kept_and_titles_alone_are_not_names() -> None:
    assert scrub("Alonsoville, Dr Smith") == "Alonsoville, Dr Smith"


def test_ids_and_accession_numbers() -> None:
    out = scrub("MRN-4242-7781 acc ACC-99120; old MRN: 55-1234 and medical record 99887766.")
    assert "4242" not in out and "99120" not in out and "55-1234" not in out
    assert "99887766" not in out
    assert out.count(ID) == 4


@pytest.mark.parametrize(
    "written",
    [
        "19610315",
        "1961-03-15",
        "15/03/1961",
        "03/15/1961",
        "15 March 1961",
        "March 15, 1961",
        "Mar 15 1961",
    ],
)
def test_birth_date_in_any_written_form(written: str) -> None:
    out = scrub(f"born {written}.", dayfirst=True)
    assert out == f"born {DOB}."


def test_other_dates_shift_like_image_dates_and_keep_their_format() -> None:
    out = scrub("CT 2026-01-02, 01/02/2026, 2 January 2026, January 2, 2026 and 20260102.")
    assert out == "CT 2025-12-23, 12/23/2025, 23 December 2025, December 23, 2025 and 20251223."


def test_ambiguous_dates_follow_the_jurisdiction() -> None:
    assert scrub("on 03/04/2026", shift=-1, dayfirst=True) == "on 02/04/2026"
    assert scrub("on 03/04/2026", shift=-1, dayfirst=False) == "on 03/03/2026"


def test_without_a_shift_dates_are_replaced() -> None:
    assert scrub("on 2026-01-02", shift=None) == "on [DATE]"


def test_phone_address_email() -> None:
    out = scrub(
        "Call 34 555 0100, +1 (617) 555-1234 or referrer@example.org or x@y.com; "
        "lives at 12 Windmill Lane, La Mancha."
    )
    assert "555" not in out and "617" not in out
    assert "Windmill" not in out and "Mancha" not in out
    assert "@" not in out
    assert out.count(PHONE) == 2 and out.count(EMAIL) == 2 and ADDRESS in out


def test_clinical_numbers_are_kept() -> None:
    text = "8 mm nodule, 3.5 x 2.1 cm, SUV 4.2, 120 kVp, 2 of 12 nodes, BI-RADS 4, 1200 mL."
    assert scrub(text) == text


def test_text_dates_shift_exactly_as_the_image_dates() -> None:
    result = Engine(b"k" * 32).deidentify(ct_study(Patient(), count=1, size=4)[0])
    shifted = (date(2026, 1, 2) + timedelta(days=result.date_shift_days)).strftime("%Y-%m-%d")
    scrubber = Scrubber(result.identity.known(), shift_days=result.date_shift_days)
    assert scrubber.scrub("CT of 2026-01-02") == f"CT of {shifted}"


def test_merged_identifiers() -> None:
    a = KnownIdentifiers(names=("A^B",), birth_date="19610315")
    b = KnownIdentifiers(names=("C^D", "A^B"), ids=("X1",), birth_date="19700101")
    m = a.merged(b)
    assert m.names == ("A^B", "C^D") and m.ids == ("X1",) and m.birth_date == "19610315"
