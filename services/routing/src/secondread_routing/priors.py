"""Prior studies of the same pseudonymous patient, ranked by relevance: pure logic, no I/O.

Relevance combines, in this order of weight: the same body region, the same modality, and
recency (a prior a few months old says more than one ten years old).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class StudySummary:
    """What the archive says about one study (pseudonymous)."""

    orthanc_id: str
    study_instance_uid: str
    study_date: date | None
    description: str
    modalities: frozenset[str]
    body_parts: frozenset[str]


@dataclass(frozen=True)
class RankedPrior:
    study: StudySummary
    score: float
    reasons: tuple[str, ...]


BODY_PART_WEIGHT = 3.0
MODALITY_WEIGHT = 2.0
RECENCY_WEIGHT = 1.0
RECENCY_HALF_LIFE_DAYS = 365.0


def parse_da(value: str) -> date | None:
    """A DICOM DA (``YYYYMMDD``) as a date, or ``None`` when absent or malformed."""
    value = value.strip()
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def rank_priors(
    current: list[StudySummary],
    candidates: list[StudySummary],
    *,
    limit: int = 10,
    lookback_days: int | None = None,
) -> list[RankedPrior]:
    """Rank ``candidates`` (the patient's other archived studies) against the current ones.

    The current studies themselves are never priors; a study dated after the current one is
    kept (it may be a later follow-up) but gets no recency credit. With ``lookback_days``, a
    study dated more than that many days before the current one is left out (an undated one is
    kept: its age is unknown).
    """
    current_uids = {s.study_instance_uid for s in current}
    parts = frozenset().union(*(s.body_parts for s in current)) if current else frozenset()
    modalities = frozenset().union(*(s.modalities for s in current)) if current else frozenset()
    dates = [s.study_date for s in current if s.study_date]
    reference = max(dates) if dates else None
    ranked: list[RankedPrior] = []
    for study in candidates:
        if study.study_instance_uid in current_uids:
            continue
        if (
            lookback_days is not None
            and reference
            and study.study_date
            and (reference - study.study_date).days > lookback_days
        ):
            continue
        score, reasons = 0.0, []
        if parts & study.body_parts:
            score += BODY_PART_WEIGHT
            reasons.append("same body part")
        if modalities & study.modalities:
            score += MODALITY_WEIGHT
            reasons.append("same modality")
        if reference and study.study_date and study.study_date <= reference:
            age = (reference - study.study_date).days
            score += RECENCY_WEIGHT * math.exp(-math.log(2) * age / RECENCY_HALF_LIFE_DAYS)
            reasons.append(f"{age} days earlier")
        ranked.append(RankedPrior(study, round(score, 3), tuple(reasons)))
    ranked.sort(key=lambda r: (-r.score, r.study.study_instance_uid))
    return ranked[:limit]
