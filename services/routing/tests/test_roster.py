"""Parsing and validating a roster document (pure)."""

from datetime import date
from pathlib import Path

import pytest

from secondread_routing.roster import (
    Reader,
    RosterError,
    parse_roster,
    read_roster_file,
    valid_jurisdiction,
)
from secondread_routing.rules import SUBSPECIALTIES

TODAY = date(2026, 12, 1)
DEMO = Path(__file__).parents[3] / "deploy" / "roster.toml"


def reader(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "r1",
        "display_name": "Dr. Test",
        "credentials": "MD",
        "subspecialties": ["chest"],
        "licences": [{"jurisdiction": "US", "expires": date(2027, 1, 1)}],
    }
    return base | over


def test_the_demo_roster_covers_every_subspecialty() -> None:
    readers = read_roster_file(DEMO, today=TODAY)
    covered = {s for r in readers for s in r.subspecialties}
    assert covered == set(SUBSPECIALTIES)
    assert [r.id for r in readers] == ["rad-chen", "rad-okafor", "rad-silva", "rad-novak"]


def test_yaml_and_toml_read_the_same(tmp_path: Path) -> None:
    y = tmp_path / "r.yaml"
    y.write_text(
        "reader:\n  - id: r1\n    display_name: Dr. Test\n    subspecialties: [chest]\n"
        "    licences: [{jurisdiction: US-NY, expires: 2027-01-01}]\n"
        "    absences: [{from: 2026-12-24, to: 2026-12-31}]\n"
    )
    t = tmp_path / "r.toml"
    t.write_text(
        '[[reader]]\nid = "r1"\ndisplay_name = "Dr. Test"\nsubspecialties = ["chest"]\n'
        'licences = [{ jurisdiction = "US-NY", expires = 2027-01-01 }]\n'
        "absences = [{ from = 2026-12-24, to = 2026-12-31 }]\n"
    )
    assert read_roster_file(y, today=TODAY) == read_roster_file(t, today=TODAY)


def test_every_problem_names_the_reader_and_the_field() -> None:
    doc = {
        "reader": [
            reader(id="a", subspecialties=["astrology"]),
            reader(id="b", licences=[{"jurisdiction": "XX", "expires": date(2027, 1, 1)}]),
            reader(id="c"),
            reader(id="c"),
            reader(id="d", licences=[{"jurisdiction": "US", "expires": date(2026, 11, 30)}]),
            reader(id="e", max_open=0),
            {"display_name": "nobody"},
        ]
    }
    with pytest.raises(RosterError) as exc:
        parse_roster(doc, today=TODAY)
    problems = exc.value.problems
    assert any(p.startswith("reader 'a' field subspecialties") and "astrology" in p
               for p in problems)  # fmt: skip
    assert any(p.startswith("reader 'b' field licences.0.jurisdiction") and "'XX'" in p
               for p in problems)  # fmt: skip
    assert any(p.startswith("reader 'c' field id: duplicate id") for p in problems)
    assert any(p.startswith("reader 'd' field licences.0.expires") and "expired" in p
               for p in problems)  # fmt: skip
    assert any(p.startswith("reader 'e' field max_open") for p in problems)
    assert any(p.startswith("reader #7 field id") for p in problems)


def test_licence_country_subdivision_and_expiry() -> None:
    r = Reader.model_validate(reader(licences=[
        {"jurisdiction": "US", "expires": date(2027, 1, 1)},
        {"jurisdiction": "DE-BY", "expires": date(2027, 6, 1)},
    ]))  # fmt: skip
    assert r.licensed_for("US-NY", date(2027, 1, 1))  # a country licence covers its states
    assert not r.licensed_for("US", date(2027, 1, 2))  # expired by then
    assert r.licensed_for("DE-BY", date(2027, 1, 2))
    assert not r.licensed_for("DE", date(2027, 1, 2))  # a state licence is not the country's
    assert not r.licensed_for("DE-BE", date(2027, 1, 2))
    assert valid_jurisdiction("GB") and valid_jurisdiction("US-NY")
    assert not valid_jurisdiction("UK") and not valid_jurisdiction("us")


def test_the_licence_named_in_the_signature_block_is_the_one_that_covers_the_case() -> None:
    r = Reader.model_validate(reader(licences=[
        {"jurisdiction": "US", "expires": date(2027, 1, 1)},
        {"jurisdiction": "US-NY", "expires": date(2027, 1, 1)},
    ]))  # fmt: skip
    assert r.licence_for("US-NY", date(2026, 12, 1)) == "US-NY"  # the most specific
    assert r.licence_for("US-CA", date(2026, 12, 1)) == "US"
    assert r.licence_for("GB", date(2026, 12, 1)) == ""


def test_availability_absences_and_active() -> None:
    r = Reader.model_validate(
        reader(absences=[{"from": date(2026, 12, 24), "to": date(2026, 12, 31)}])
    )
    assert not r.away(date(2026, 12, 1), date(2026, 12, 4))
    assert r.away(date(2026, 12, 22), date(2026, 12, 25))
    assert Reader.model_validate(reader(active=False)).away(TODAY, TODAY)
    with pytest.raises(ValueError, match="before it starts"):
        Reader.model_validate(
            reader(absences=[{"from": date(2026, 12, 2), "to": date(2026, 12, 1)}])
        )
