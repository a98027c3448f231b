"""The free-text PHI detector: every category it must find, and the clinical terms it must keep.

Every identifier below is invented (the names from lists of common given and family names).
"""

from __future__ import annotations

import io
import re
import tomllib
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest

from secondread_deidentify.engine import Engine
from secondread_deidentify.phi import detector, read_name_lists, shape_tags
from secondread_deidentify.scrub import KnownIdentifiers, Scrubber
from tests.synthetic import Patient, ct_study

SHIFT = 17


def scrub(text: str, shift: int | None = SHIFT) -> str:
    return Scrubber(KnownIdentifiers(), shift_days=shift).scrub(text)


def gone(out: str, *values: str) -> bool:
    return not any(v.lower() in out.lower() for v in values)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Discussed with Dr. Sarah Whitfield today.", ["Sarah", "Whitfield"]),
        ("Discussed with dr. o'brien-smith today.", ["o'brien", "smith"]),
        ("Referred by Whitfield, Sarah, MD.", ["Whitfield", "Sarah"]),
        ("Referred by Prof Ingrid Lindqvist-Haddad.", ["Ingrid", "Lindqvist", "Haddad"]),
        ("Her husband Thaddeus called.", ["Thaddeus"]),
        ("Her husband tom called about the results.", ["tom"]),
        ("Nurse Kim Okonkwo sent the disc.", ["Kim", "Okonkwo"]),
        ("Images reviewed with Kwame Abernathy and Mei Nakamura.", ["Kwame", "Abernathy", "Mei"]),
        ("PER DR JONES", ["JONES"]),
        ("Dictated by Chloe Ross-Whyte MD.", ["Chloe", "Ross", "Whyte"]),
    ],
)
def test_names_of_anyone_in_any_case_and_order(text: str, names: list[str]) -> None:
    out = scrub(text)
    assert gone(out, *names), out
    assert "[NAME]" in out


def test_titles_and_roles_stay_in_front_of_the_placeholder() -> None:
    assert scrub("Her husband Thaddeus called.") == "Her husband [NAME] called."
    assert scrub("Discussed with Dr. Sarah Whitfield today.") == (
        "Discussed with Dr. [NAME] today."
    )


# --------------------------------------------------------------------------- places


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Prior CT at Riverside Imaging Center was normal.", ["Riverside"]),
        ("Transferred from St. Aldric Hospital overnight.", ["Aldric"]),
        ("Outside films from Lakeside Clinic.", ["Lakeside"]),
        ("Seen at Westbrook University Hospital in 2019.", ["Westbrook"]),
    ],
)
def test_organisations(text: str, values: list[str]) -> None:
    out = scrub(text)
    assert gone(out, *values) and "[ORG]" in out, out


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("She lives at 1200 Harbor Blvd, Springfield, MA 01103.", ["1200", "Harbor", "01103"]),
        ("Address: 48 Elm Street, Albany, NY 12207.", ["48 Elm", "12207"]),
        ("Moved to Bridgeport, CT last year.", ["Bridgeport"]),
        ("Post code SW1A 1AA on file.", ["SW1A"]),
    ],
)
def test_addresses_cities_and_postal_codes(text: str, values: list[str]) -> None:
    out = scrub(text)
    assert gone(out, *values) and "[ADDRESS]" in out, out


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("written", "shifted"),
    [
        ("14 March 2024", "31 March 2024"),
        ("2/3/2022", "02/20/2022"),
        ("2024-03-14", "2024-03-31"),
        ("March 14, 2024", "March 31, 2024"),
        ("March 14, 2024 at 10:30", "March 31, 2024 at 10:30"),
    ],
)
def test_whole_dates_shift_like_the_image_dates(written: str, shifted: str) -> None:
    assert scrub(f"Seen on {written}.") == f"Seen on {shifted}."


@pytest.mark.parametrize("written", ["3/15/24", "March 2024", "2/03", "November"])
def test_partial_dates_are_replaced(written: str) -> None:
    assert scrub(f"Seen in {written}.") == "Seen in [DATE]."


def test_without_a_shift_every_date_is_replaced() -> None:
    assert scrub("Seen on 14 March 2024.", shift=None) == "Seen on [DATE]."


def test_text_dates_agree_with_the_image_dates() -> None:
    result = Engine(b"k" * 32).deidentify(ct_study(Patient(), count=1, size=4)[0])
    shifted = date(2024, 3, 14) + timedelta(days=result.date_shift_days)
    scrubber = Scrubber(result.identity.known(), shift_days=result.date_shift_days)
    assert scrubber.scrub("CT of 14 March 2024.") == f"CT of {shifted:%d %B %Y}."


# --------------------------------------------------------------------------- contacts, ids


@pytest.mark.parametrize(
    ("text", "placeholder", "values"),
    [
        ("Call her mobile 617-555-0142.", "[PHONE]", ["555-0142"]),
        ("Fax: (413) 555-0199 for results.", "[PHONE]", ["555-0199"]),
        ("UK office +44 20 7946 0958.", "[PHONE]", ["7946"]),
        ("Write to sarah.whitfield@riverside.org please.", "[EMAIL]", ["whitfield"]),
        ("Images at https://portal.riverside-health.org/s/9906 now.", "[URL]", ["riverside"]),
        ("Uploaded from 10.2.33.4 overnight.", "[IP]", ["10.2.33.4"]),
        ("MRN 88412093 on the request.", "[ID]", ["88412093"]),
        ("Accession A3984471 for the prior.", "[ID]", ["3984471"]),
        ("Account 4471-22 billed.", "[ID]", ["4471-22"]),
        ("Licence no. D-7734-1182 of the driver.", "[ID]", ["7734"]),
        ("Pacemaker serial PM656421X, MR conditional.", "[ID]", ["656421"]),
        ("SSN 123-45-6789 on the form.", "[ID]", ["6789"]),
    ],
)
def test_contacts_and_identifiers(text: str, placeholder: str, values: list[str]) -> None:
    out = scrub(text)
    assert gone(out, *values) and placeholder in out, out


def test_labels_are_kept_in_front_of_the_number() -> None:
    assert scrub("MRN 88412093 on the request.") == "MRN [ID] on the request."


@pytest.mark.parametrize("age", ["93 years old", "aged 97", "101-year-old", "95 yo"])
def test_ages_over_89(age: str) -> None:
    out = scrub(f"The patient, {age}, fell.")
    assert "[AGE]" in out and not re.search(r"9[3-7]|101", out), out


@pytest.mark.parametrize("age", ["45 years old", "a 61-year-old", "aged 89"])
def test_ages_up_to_89_are_kept(age: str) -> None:
    assert scrub(f"The patient, {age}, fell.") == f"The patient, {age}, fell."


# --------------------------------------------------------------------------- clinical meaning

CLINICAL = [
    "Hodgkin lymphoma", "non-Hodgkin lymphoma", "Baker cyst", "Baker's cyst", "Bosniak IIF",
    "Bosniak 2F", "Chiari I malformation", "Paget disease", "Wilms tumor", "Crohn disease",
    "Crohn's", "Alzheimer disease", "Schmorl nodes", "Graves disease", "Graves' disease",
    "Meckel diverticulum", "Salter-Harris II", "Gleason 3+4=7", "Fazekas grade 2",
    "BI-RADS 4", "PI-RADS 4", "LI-RADS 3", "Lung-RADS 4A", "TI-RADS 3", "Fleischner",
    "T2N0M0", "pT1bN0M0", "Deauville 4", "tamoxifen 20 mg", "8 mm", "3.2 x 2.1 cm",
    "L4-L5", "C5-6", "right upper lobe", "left kidney", "MR perfusion", "MR BRAIN WO/W",
    "SUVmax 12.4", "May represent post-treatment change",
]  # fmt: skip


@pytest.mark.parametrize("term", CLINICAL)
def test_clinical_terms_survive(term: str) -> None:
    text = f"Impression: {term}. No other finding."
    assert scrub(text) == text


@pytest.mark.parametrize(
    "descriptor",
    ["CT CHEST W CONTRAST", "Sag T1 TSE", "CT Chest Abdomen Pelvis w/ Contrast",
     "PET/CT SKULL BASE TO THIGH", "Breast MRI Bilateral", "Hip Right 2 Views"],
)  # fmt: skip
def test_dicom_descriptors_survive(descriptor: str) -> None:
    assert scrub(descriptor) == descriptor


def test_an_eponym_that_is_also_a_surname_is_a_name_without_its_head_word() -> None:
    out = scrub("Dr. Baker found a Baker cyst; Mrs Graves has Graves disease.")
    assert out == "Dr. [NAME] found a Baker cyst; Mrs [NAME] has Graves disease."


# --------------------------------------------------------------------------- determinism


def test_the_same_text_gives_the_same_output() -> None:
    text = "Dr. Sarah Whitfield (617-555-0142) saw her on 14 March 2024 at Lakeside Clinic."
    first = scrub(text)
    assert first == scrub(text) == Scrubber(KnownIdentifiers(), shift_days=SHIFT).scrub(text)


def test_known_identifiers_first_and_the_same_placeholder_in_headers_and_intake() -> None:
    patient = Patient()
    data = ct_study(patient, count=1, size=4, free_text={"AdditionalPatientHistory": (
        "Seen by Dr Whitfield at Riverside Imaging Center and at Sancho General Hospital."
    )})[0]  # fmt: skip
    result = Engine(b"k" * 32).deidentify(data)
    history = str(pydicom.dcmread(io.BytesIO(result.data)).AdditionalPatientHistory)
    intake = Scrubber(result.identity.known(), shift_days=result.date_shift_days).scrub(
        "Seen by Dr Whitfield at Riverside Imaging Center and at Sancho General Hospital."
    )
    assert history == intake == "Seen by Dr [NAME] at [ORG] and at [ORG]."


def test_low_value_free_text_about_the_patient_is_removed() -> None:
    data = ct_study(Patient(), count=1, size=4, free_text={
        "PatientComments": "Lives with her husband Thaddeus in Springfield.",
        "StudyComments": "Requested by Dr Whitfield.",
    })[0]  # fmt: skip
    ds = pydicom.dcmread(io.BytesIO(Engine(b"k" * 32).deidentify(data).data))
    assert "PatientComments" not in ds
    assert ds.StudyComments == "Requested by Dr [NAME]."


# --------------------------------------------------------------------------- the library


def test_name_lists_read_as_philter_lite_reads_them() -> None:
    import importlib.util

    spec = importlib.util.find_spec("philter_lite")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "filters" / "set.toml"
    fast = read_name_lists(path.read_text("utf-8"))
    with path.open("rb") as f:
        slow = tomllib.load(f)
    assert fast.keys() == slow.keys()
    for key in slow:
        assert fast[key] == slow[key], key


def test_philter_runs_with_the_shape_tagger_not_nltk_data() -> None:
    import philter_lite.philter

    detector()
    tokens = ["Sarah", " ", "saw", " ", "Brown", " ", "CT", " ", "12"]
    assert philter_lite.philter.nltk.pos_tag(tokens)[0] == ("Sarah", "NNP")  # type: ignore[attr-defined]
    common = frozenset({"brown", "saw"})
    text = "".join(tokens)
    assert [t for _, t in shape_tags(tokens, text, common) if t != "SP"] == [
        "NNP", "NN", "NN", "NN", "CD",
    ]  # fmt: skip
    assert [t for _, t in shape_tags(["SARAH"], "SARAH", common)] == ["NN"]
