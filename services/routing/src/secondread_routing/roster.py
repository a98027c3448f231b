"""The roster: who reads what, where they are licensed, when they are away, and their conflicts
of interest. Pure: parsing and validating a roster document; the roster itself lives in
PostgreSQL (repository.py) and is changed by ``secondread roster import``.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the lock yet
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from secondread_routing.errors import RosterError
from secondread_routing.rules import SUBSPECIALTIES

__all__ = ["Absence", "Licence", "Reader", "RosterError", "parse_roster", "read_roster_file"]

# ISO 3166-1 alpha-2 (officially assigned codes).
COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
    """.split()
)
_JURISDICTION = re.compile(r"^([A-Z]{2})(-[A-Z0-9]{1,3})?$")


def country_of(jurisdiction: str) -> str:
    """``US`` for ``US-NY``."""
    return jurisdiction.split("-")[0]


def valid_jurisdiction(code: str) -> bool:
    """An ISO 3166-1 alpha-2 country, or an ISO 3166-2 subdivision of one (``US-NY``)."""
    m = _JURISDICTION.match(code)
    return bool(m) and m.group(1) in COUNTRIES  # type: ignore[union-attr]


class Licence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    jurisdiction: str
    expires: date

    @field_validator("jurisdiction")
    @classmethod
    def _code(cls, value: str) -> str:
        if not valid_jurisdiction(value):
            raise ValueError(
                f"bad jurisdiction code {value!r} (ISO 3166-1 alpha-2 or 3166-2, e.g. US, US-NY)"
            )
        return value

    def covers(self, jurisdiction: str, on: date) -> bool:
        """Whether this licence allows reading for ``jurisdiction`` on ``on``: the same
        jurisdiction, or its whole country, not expired."""
        same = self.jurisdiction in (jurisdiction, country_of(jurisdiction))
        return same and on <= self.expires


class Absence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    """Inclusive."""

    @model_validator(mode="after")
    def _ordered(self) -> Absence:
        if self.end < self.start:
            raise ValueError(f"absence ends ({self.end}) before it starts ({self.start})")
        return self

    def overlaps(self, first: date, last: date) -> bool:
        return self.start <= last and first <= self.end


class Reader(BaseModel):
    """One radiologist on the roster."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    display_name: str = Field(min_length=1)
    credentials: str = ""
    """As printed under the signature, e.g. ``MD, FRCR``."""
    board_certifications: list[str] = Field(default_factory=list)
    subspecialties: list[str] = Field(min_length=1)
    licences: list[Licence] = Field(min_length=1)
    max_open: int = Field(default=20, ge=1)
    active: bool = True
    absences: list[Absence] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    """Hospital ids this reader must never review for (conflict of interest)."""

    @field_validator("subspecialties")
    @classmethod
    def _known(cls, values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in SUBSPECIALTIES]
        if unknown:
            raise ValueError(
                f"unknown subspecialty {', '.join(map(repr, unknown))}"
                f" (one of {', '.join(SUBSPECIALTIES)})"
            )
        return values

    def licensed_for(self, jurisdiction: str, on: date) -> bool:
        return any(lic.covers(jurisdiction, on) for lic in self.licences)

    def licence_for(self, jurisdiction: str, on: date) -> str:
        """The jurisdiction of the licence that covers ``jurisdiction`` on ``on`` (the most
        specific one), or ``""``."""
        covering = [lic.jurisdiction for lic in self.licences if lic.covers(jurisdiction, on)]
        return max(covering, key=len, default="")

    def away(self, first: date, last: date) -> bool:
        """Inactive, or absent on any day from ``first`` to ``last``."""
        return not self.active or any(a.overlaps(first, last) for a in self.absences)

    def canonical(self) -> str:
        """A stable JSON form: what import compares to decide whether a reader changed."""
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)


def _reader_name(entry: Any, index: int) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
        return f"reader {entry['id']!r}"
    return f"reader #{index + 1}"


def parse_roster(data: Any, *, today: date) -> list[Reader]:
    """Validate a roster document (``{"reader": [...]}``); every problem is reported at once.

    Refused: an unknown subspecialty, a bad jurisdiction code, a duplicate id, a licence that has
    already expired on ``today``, and any missing or unknown field.
    """
    if not isinstance(data, dict) or not isinstance(data.get("reader"), list):
        raise RosterError(["the roster needs a list of [[reader]] entries"])
    extra = sorted(set(data) - {"reader"})
    problems = [f"unknown top-level key {k!r}" for k in extra]
    readers: list[Reader] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(data["reader"]):
        who = _reader_name(entry, i)
        try:
            reader = Reader.model_validate(entry)
        except ValidationError as exc:
            for e in exc.errors():
                field = ".".join(str(p) for p in e["loc"]) or "(entry)"
                msg = str(e["msg"]).removeprefix("Value error, ")
                problems.append(f"{who} field {field}: {msg}")
            continue
        if reader.id in seen:
            problems.append(f"{who} field id: duplicate id (also reader #{seen[reader.id] + 1})")
        seen.setdefault(reader.id, i)
        for j, lic in enumerate(reader.licences):
            if lic.expires < today:
                problems.append(
                    f"{who} field licences.{j}.expires: licence for {lic.jurisdiction}"
                    f" expired on {lic.expires}"
                )
        readers.append(reader)
    if problems:
        raise RosterError(problems)
    return readers


def read_roster_file(path: Path, *, today: date) -> list[Reader]:
    """A roster file in TOML (``.toml``) or YAML (``.yaml``, ``.yml``), validated."""
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise RosterError([f"roster file not found: {path}"]) from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise RosterError([f"{path}: cannot be parsed: {exc}"]) from exc
    return parse_roster(data, today=today)
