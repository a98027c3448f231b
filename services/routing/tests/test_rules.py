"""The subspecialty rules and triage flags as data (pure)."""

from pathlib import Path

import pytest

from secondread_routing.rules import (
    AMBIGUOUS_FLAG,
    SUBSPECIALTIES,
    CaseFacts,
    RulesError,
    age_in_years,
    load_rules,
    parse_rules,
)
from tests.routing_cases import DESCRIPTIONS

RULES = load_rules()


def facts(
    modality: str = "", part: str = "", desc: str = "", age: str = "", **kw: str
) -> CaseFacts:
    return CaseFacts(
        modalities=(modality,) if modality else (),
        body_parts=(part,) if part else (),
        study_descriptions=(desc,) if desc else (),
        patient_age=age,
        **kw,  # type: ignore[arg-type]
    )


def test_the_default_rules_classify_the_description_table() -> None:
    assert len(DESCRIPTIONS) >= 40
    wrong = [
        (d.description, d.expected, got.subspecialty, got.rule)
        for d in DESCRIPTIONS
        if (
            got := RULES.classify(facts(d.modality, d.body_part, d.description, d.age))
        ).subspecialty
        != d.expected
    ]
    assert wrong == []
    # every subspecialty is reachable from the table
    assert {d.expected for d in DESCRIPTIONS} == set(SUBSPECIALTIES)


def test_every_decision_names_its_rule_and_the_fallback_is_flagged() -> None:
    got = RULES.classify(facts("MR", "HEAD", "MRI BRAIN"))
    assert (got.subspecialty, got.rule, got.flags) == ("neuro", "neuro-description", ())
    got = RULES.classify(facts("OT"))
    assert (got.subspecialty, got.rule, got.flags) == ("general", "general", (AMBIGUOUS_FLAG,))


def test_series_descriptions_procedure_codes_and_question_are_read() -> None:
    assert (
        RULES.classify(CaseFacts(series_descriptions=("Ax T2 FLAIR brain",))).subspecialty
        == "neuro"
    )
    got = RULES.classify(CaseFacts(modalities=("CT",), procedure_codes=("CT of chest",)))
    assert (got.subspecialty, got.rule) == ("chest", "procedure-chest")
    got = RULES.classify(CaseFacts(modalities=("CT",), clinical_question="rule out fracture"))
    assert (got.subspecialty, got.rule) == ("msk", "question-msk")


def test_pediatric_age_is_configurable() -> None:
    text = (
        "pediatric_under_years: 12\n"
        "rules:\n  - {id: kids, subspecialty: pediatric, match: {pediatric: true}}\n"
    )
    rules = parse_rules(text, "t.yaml")
    assert rules.classify(facts(age="011Y")).subspecialty == "pediatric"
    assert rules.classify(facts(age="013Y")).subspecialty == "general"
    assert rules.classify(facts(age="")).subspecialty == "general"  # unknown age: not a child
    assert age_in_years("006M") == 0.5 and age_in_years("014D") is not None
    assert age_in_years("45") is None


def test_priority_decides_then_file_order() -> None:
    text = """
rules:
  - {id: low, subspecialty: body, priority: 1, match: {modality: [CT]}}
  - {id: high, subspecialty: chest, priority: 5, match: {modality: [CT]}}
  - {id: high-too, subspecialty: neuro, priority: 5, match: {modality: [CT]}}
"""
    assert parse_rules(text, "t").classify(facts("CT")).rule == "high"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - {id: a, subspecialty: astrology, match: {modality: [CT]}}\n",
         "rule 'a' field subspecialty: unknown subspecialty 'astrology'"),
        ("rules:\n  - {id: b, subspecialty: neuro, match: {question: ['(unclosed']}}\n",
         "rule 'b' field match.question"),
        ("rules:\n  - {id: c, subspecialty: neuro, match: {colour: [red]}}\n",
         "rule 'c' field match.colour"),
        ("rules:\n  - {id: d, subspecialty: neuro, match: {}}\n",
         "rule 'd' field match: matches nothing"),
        ("rules:\n  - {id: e, subspecialty: neuro, match: {modality: [CT]}}\n"
         "  - {id: e, subspecialty: chest, match: {modality: [CT]}}\n",
         "rule 'e' field id: duplicate id"),
        ("rules:\n  - {subspecialty: neuro, match: {modality: [CT]}}\n", "rule #1 field id"),
        ("rules: [{id: f, subspecialty: neuro, match: {modality: [CT]}}]\n"
         "triage:\n  - {name: t, patterns: ['[']}\n", "triage flag 't' field patterns"),
        ("rules: [\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_an_invalid_rules_file_names_the_rule_and_the_field(text: str, message: str) -> None:
    with pytest.raises(RulesError) as exc:
        parse_rules(text, "bad.yaml")
    assert message in str(exc.value) and "bad.yaml" in str(exc.value)


def test_override_file_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {id: all-ct, subspecialty: body, match: {modality: [CT]}}\n")
    assert load_rules(path).classify(facts("CT", "HEAD")).rule == "all-ct"
    with pytest.raises(RulesError, match="not found"):
        load_rules(tmp_path / "missing.yaml")


def test_triage_flags_of_the_default_rules() -> None:
    flags, raised = RULES.triage("Findings are equivocal; malignancy cannot be ruled out.", "")
    assert flags == ["hedge:cannot be ruled out", "hedge:equivocal"] and not raised
    flags, raised = RULES.triage("Suspicious for metastatic disease, T2N1M0.", "staging?")
    assert "hedge:suspicious for" in flags and "staging" in flags and raised
    flags, raised = RULES.triage("", "pre-operative planning before surgery")
    assert flags == ["planned_procedure"] and raised
    flags, raised = RULES.triage("Normal study but persistent symptoms.", "")
    assert flags == ["symptoms_imaging_discordant"] and not raised
    assert RULES.triage("Clear lungs. No acute findings.", "cough") == ([], False)
    # a phrase is matched on word boundaries: "possibly" is not found in "impossibly"
    assert RULES.triage("impossibly", "") == ([], False)


def test_triage_is_configurable() -> None:
    text = """
rules: [{id: a, subspecialty: neuro, match: {modality: [MR]}}]
triage:
  - {name: second_look, phrases: [second look], raises_priority: true}
"""
    assert parse_rules(text, "t").triage("asks for a second look", "") == (["second_look"], True)
