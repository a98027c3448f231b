"""The roster: who reads what, where they are licensed, and their conflicts of interest."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

SUBSPECIALTIES = (
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
)


class Radiologist(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    subspecialties: list[str]
    jurisdictions: list[str]
    max_open: int = Field(default=20, ge=1)
    conflicts: list[str] = Field(default_factory=list)


class Roster(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    radiologist: list[Radiologist]


class RosterError(ValueError):
    """The roster file is missing or invalid; the message names the problem."""


def load_roster(path: Path) -> Roster:
    """Read and validate a roster TOML file."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise RosterError(f"roster file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RosterError(f"roster file {path} is not valid TOML: {exc}") from exc
    roster = Roster.model_validate(data)
    for rad in roster.radiologist:
        unknown = set(rad.subspecialties) - set(SUBSPECIALTIES)
        if unknown:
            raise RosterError(f"{path}: {rad.id} has unknown subspecialties {sorted(unknown)}")
    return roster
