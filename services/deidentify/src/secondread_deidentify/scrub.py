"""Scrub the free text of an intake (clinical question, original report) of known identifiers."""

from __future__ import annotations

import re

PLACEHOLDER = "[REDACTED]"


def _date_variants(value: str) -> set[str]:
    """A DICOM DA ``YYYYMMDD`` as people write it: ISO, day-first and month-first."""
    y, m, d = value[:4], value[4:6], value[6:8]
    return {value, f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{y}/{m}/{d}"}


def _variants(value: str) -> set[str]:
    """A DICOM person name ``Family^Given`` also appears as "Given Family" and each part alone;
    a DICOM date appears in the usual written forms."""
    value = value.strip()
    if re.fullmatch(r"\d{8}", value):
        return _date_variants(value)
    out = {value}
    parts = [p for p in re.split(r"[\^\s,]+", value) if len(p) >= 2]
    out.update(parts)
    if len(parts) >= 2:
        out.add(" ".join(reversed(parts[:2])))
        out.add(" ".join(parts[:2]))
    return {v for v in out if len(v) >= 2}


def scrub_text(text: str, identifiers: list[str]) -> str:
    """Replace every known identifier in ``text`` (any case, names in any order)."""
    terms: set[str] = set()
    for ident in identifiers:
        terms |= _variants(ident)
    for term in sorted(terms, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(term)}(?!\w)", PLACEHOLDER, text, flags=re.IGNORECASE)
    return text
