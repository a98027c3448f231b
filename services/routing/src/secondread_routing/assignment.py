"""Classification and assignment: pure functions, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from secondread_routing.roster import Radiologist, Roster
from secondread_shared.events import Urgency

# (subspecialty, pattern over "modalities body parts question"), first match wins.
DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("breast", r"\b(MG|breast|mammo\w*)\b"),
    ("nuclear_medicine", r"\b(NM|PT|PET|scintigraph\w*)\b"),
    ("cardiac", r"\b(cardiac|heart|coronar\w*)\b"),
    ("neuro", r"\b(HEAD|BRAIN|SPINE|neuro\w*|stroke|glioma)\b"),
    ("head_neck", r"\b(NECK|thyroid|larynx|sinus\w*)\b"),
    ("msk", r"\b(KNEE|SHOULDER|HIP|EXTREMITY|fracture|tendon|ligament)\b"),
    ("prostate_gu", r"\b(PROSTATE|KIDNEY|BLADDER|renal)\b"),
    ("chest", r"\b(CHEST|LUNG|THORAX|nodule|pulmonary)\b"),
    ("body", r"\b(ABDOMEN|PELVIS|LIVER|pancrea\w*)\b"),
)
FALLBACK = "body"

HEDGES = (
    "cannot exclude",
    "cannot be excluded",
    "nonspecific",
    "non-specific",
    "recommend correlation",
    "clinical correlation",
    "indeterminate",
    "possibly",
    "may represent",
)


def classify(
    modalities: list[str],
    body_parts: list[str],
    question: str,
    rules: tuple[tuple[str, str], ...] = DEFAULT_RULES,
) -> str:
    """The subspecialty of a case, by the first rule that matches its text."""
    text = " ".join([*modalities, *body_parts, question])
    for subspecialty, pattern in rules:
        if re.search(pattern, text, flags=re.IGNORECASE):
            return subspecialty
    return FALLBACK


def hedges(report: str) -> list[str]:
    """The hedging phrases found in a report, as flags ``hedge:<phrase>``."""
    low = report.lower()
    return [f"hedge:{h}" for h in HEDGES if h in low]


def choose(
    roster: Roster,
    *,
    subspecialty: str,
    jurisdiction: str,
    hospital_id: str,
    workload: Mapping[str, int],
) -> Radiologist | None:
    """The least-loaded eligible reader, or ``None`` when nobody is eligible.

    Eligible: the subspecialty, a licence for the jurisdiction (or its country), and no
    conflict of interest with the sending hospital. Capacity (``max_open``) is a preference, not
    a bar: readers below it come first, and when every eligible reader is at capacity the case
    still goes to the least loaded (see :func:`over_capacity`), because a valid case must not
    wait in a dead-letter queue for a roster change. Ties go to the roster order.
    """
    country = jurisdiction.split("-")[0]
    eligible = [
        r
        for r in roster.radiologist
        if subspecialty in r.subspecialties
        and (jurisdiction in r.jurisdictions or country in r.jurisdictions)
        and hospital_id not in r.conflicts
    ]
    if not eligible:
        return None
    return min(
        eligible,
        key=lambda r: (workload.get(r.id, 0) >= r.max_open, workload.get(r.id, 0)),
    )


def over_capacity(rad: Radiologist, workload: Mapping[str, int]) -> bool:
    """Whether assigning one more case puts ``rad`` above their ``max_open``."""
    return workload.get(rad.id, 0) >= rad.max_open


def due_at(received: datetime, urgency: Urgency, *, routine_h: int, urgent_h: int) -> datetime:
    """When the second opinion is due."""
    hours = urgent_h if urgency is Urgency.URGENT else routine_h
    return received + timedelta(hours=hours)
