"""Subspecialty rules and triage flags as data (a YAML file): pure logic, no I/O but reading it.

The format is documented in docs/routing.md. In short: every rule names a subspecialty, a
priority and the criteria it matches on. Within one rule every criterion given must match (and);
within one criterion any of its values may (or). The matching rule of highest priority wins, ties
going to the file's order; when no rule matches, the case is ``general`` with the flag
``classify:ambiguous``, never silently a real subspecialty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the lock yet
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from secondread_routing.errors import RulesError

SUBSPECIALTIES: tuple[str, ...] = (
    "neuro",
    "head_neck",
    "msk",
    "body",
    "chest",
    "breast",
    "cardiac",
    "prostate_gu",
    "pediatric",
    "nuclear_medicine",
    "vascular_interventional",
    "general",
)
__all__ = ["CaseFacts", "Classification", "Rules", "RulesError", "load_rules", "parse_rules"]

FALLBACK = "general"
FALLBACK_RULE = "general"
AMBIGUOUS_FLAG = "classify:ambiguous"


def _compile(patterns: list[str]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


class Match(BaseModel):
    """The criteria of one rule. Modality and body part are DICOM code strings, compared
    exactly (upper case); the others are regular expressions, searched case-insensitively."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    modality: list[str] = Field(default_factory=list)
    body_part: list[str] = Field(default_factory=list)
    description: list[str] = Field(default_factory=list)
    """Over StudyDescription and every SeriesDescription."""
    procedure: list[str] = Field(default_factory=list)
    """Over the code meanings of the procedure codes."""
    question: list[str] = Field(default_factory=list)
    """Over the words of the clinical question."""
    pediatric: bool | None = None
    """``true``: the patient is younger than ``pediatric_under_years``; ``false``: not."""

    @field_validator("modality", "body_part")
    @classmethod
    def _upper(cls, values: list[str]) -> list[str]:
        return [v.strip().upper() for v in values]

    @field_validator("description", "procedure", "question")
    @classmethod
    def _regex(cls, values: list[str]) -> list[str]:
        for v in values:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {v!r} ({exc})") from exc
        return values

    def is_empty(self) -> bool:
        return not (
            self.modality
            or self.body_part
            or self.description
            or self.procedure
            or self.question
            or self.pediatric is not None
        )


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    subspecialty: str
    priority: int = 0
    match: Match

    @field_validator("subspecialty")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SUBSPECIALTIES:
            raise ValueError(f"unknown subspecialty {value!r} (one of {', '.join(SUBSPECIALTIES)})")
        return value


class TriageFlag(BaseModel):
    """A group of phrases or patterns over the original report and the clinical question."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    phrases: list[str] = Field(default_factory=list)
    """Literal phrases, case-insensitive, on word boundaries."""
    patterns: list[str] = Field(default_factory=list)
    """Regular expressions, case-insensitive."""
    per_phrase: bool = False
    """One flag ``<name>:<phrase>`` per phrase found, instead of one flag ``<name>``."""
    raises_priority: bool = False

    @field_validator("patterns")
    @classmethod
    def _regex(cls, values: list[str]) -> list[str]:
        return Match._regex(values)


class RulesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pediatric_under_years: int = Field(default=18, ge=1, le=30)
    rules: list[Rule] = Field(min_length=1)
    triage: list[TriageFlag] = Field(default_factory=list)


@dataclass(frozen=True)
class CaseFacts:
    """What the rules read of a case (pseudonymous: codes, descriptions, an age)."""

    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    study_descriptions: tuple[str, ...] = ()
    series_descriptions: tuple[str, ...] = ()
    procedure_codes: tuple[str, ...] = ()
    patient_age: str = ""
    clinical_question: str = ""


@dataclass(frozen=True)
class Classification:
    subspecialty: str
    rule: str
    flags: tuple[str, ...]


def age_in_years(value: str) -> float | None:
    """A DICOM AS value (PS3.5 §6.2: ``nnnD``, ``nnnW``, ``nnnM``, ``nnnY``) in years."""
    m = re.fullmatch(r"\s*(\d{3})([DWMY])\s*", value or "")
    if not m:
        return None
    n = int(m.group(1))
    return n / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[m.group(2)]


class Rules:
    """A validated rules file, compiled."""

    def __init__(self, spec: RulesFile, source: str) -> None:
        self.spec = spec
        self.source = source
        ordered = sorted(enumerate(spec.rules), key=lambda ir: (-ir[1].priority, ir[0]))
        self._rules = [
            (
                r,
                _compile(r.match.description),
                _compile(r.match.procedure),
                _compile(r.match.question),
            )
            for _, r in ordered
        ]
        self._triage = [
            (
                t,
                [
                    (p, re.compile(r"(?<!\w)" + re.escape(p) + r"(?!\w)", re.IGNORECASE))
                    for p in t.phrases
                ],
                _compile(t.patterns),
            )
            for t in spec.triage
        ]

    def classify(self, facts: CaseFacts) -> Classification:
        """The subspecialty of a case and the id of the rule that decided it."""
        modalities = {m.upper() for m in facts.modalities}
        parts = {b.upper() for b in facts.body_parts}
        descriptions = " | ".join([*facts.study_descriptions, *facts.series_descriptions])
        procedures = " | ".join(facts.procedure_codes)
        age = age_in_years(facts.patient_age)
        for rule, desc, proc, question in self._rules:
            m = rule.match
            if m.modality and not modalities & set(m.modality):
                continue
            if m.body_part and not parts & set(m.body_part):
                continue
            if desc and not any(p.search(descriptions) for p in desc):
                continue
            if proc and not any(p.search(procedures) for p in proc):
                continue
            if question and not any(p.search(facts.clinical_question) for p in question):
                continue
            if m.pediatric is not None:
                child = age is not None and age < self.spec.pediatric_under_years
                if child != m.pediatric:
                    continue
            return Classification(rule.subspecialty, rule.id, ())
        return Classification(FALLBACK, FALLBACK_RULE, (AMBIGUOUS_FLAG,))

    def triage(self, *texts: str) -> tuple[list[str], bool]:
        """The triage flags raised on ``texts`` and whether one of them raises priority."""
        text = "\n".join(texts)
        flags: list[str] = []
        raise_priority = False
        for t, phrases, patterns in self._triage:
            found = [p for p, rx in phrases if rx.search(text)]
            found += [rx.pattern for rx in patterns if rx.search(text)]
            if not found:
                continue
            raise_priority = raise_priority or t.raises_priority
            if t.per_phrase:
                flags.extend(f"{t.name}:{p}" for p in found)
            else:
                flags.append(t.name)
        return flags, raise_priority


def _error_location(data: Any, loc: tuple[int | str, ...]) -> str:
    """``rule 'neuro-mr' field match.question`` from a pydantic error location."""
    if len(loc) >= 2 and loc[0] in ("rules", "triage") and isinstance(loc[1], int):
        section, index, rest = loc[0], loc[1], loc[2:]
        name = f"#{index + 1}"
        try:
            entry = data[section][index]
            key = "id" if section == "rules" else "name"
            if isinstance(entry, dict) and entry.get(key):
                name = repr(entry[key])
        except (KeyError, IndexError, TypeError):
            pass
        kind = "rule" if section == "rules" else "triage flag"
        field = ".".join(str(p) for p in rest if not isinstance(p, int)) or "(entry)"
        return f"{kind} {name} field {field}"
    return "field " + (".".join(str(p) for p in loc) or "(top level)")


def parse_rules(text: str, source: str) -> Rules:
    """Validate a rules document; :class:`RulesError` names the rule and the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{source}: expected a mapping with 'rules'")
    try:
        spec = RulesFile.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{_error_location(data, tuple(e['loc']))}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise RulesError(f"{source}: " + "; ".join(problems)) from exc
    seen: set[str] = set()
    for rule in spec.rules:
        if rule.id in seen:
            raise RulesError(f"{source}: rule {rule.id!r} field id: duplicate id")
        seen.add(rule.id)
        if rule.match.is_empty():
            raise RulesError(f"{source}: rule {rule.id!r} field match: matches nothing")
    return Rules(spec, source)


DEFAULT_RULES_RESOURCE = "default_rules.yaml"


def load_rules(path: Path | None = None) -> Rules:
    """The rules at ``path``, or the default rules shipped with routing."""
    if path is None:
        text = resources.files("secondread_routing").joinpath(DEFAULT_RULES_RESOURCE).read_text()
        return parse_rules(text, f"(default) {DEFAULT_RULES_RESOURCE}")
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise RulesError(f"rules file not found: {path}") from exc
    return parse_rules(text, str(path))
