"""The original report split into numbered statements: the findings and impression sentences.

A second reader answers each statement (confirmed, refined or revised), so the split must be
stable: the same report text always gives the same numbered list. Section headings (``FINDINGS:``,
``IMPRESSION:``, ``CONCLUSION:`` ...) name the section of the sentences after them; text before any
heading, or a report without headings, counts as findings. Other sections (technique, history,
comparison) are context, not statements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Section = Literal["findings", "impression"]

_HEADING = re.compile(
    r"(?im)(?:^|(?<=[.!?])[ \t]+)[ \t]*"
    r"(?P<name>findings|impression|conclusions?|summary|opinion|technique|history|"
    r"clinical (?:history|information|indication)|indication|comparison|procedure)\s*:\s*"
)
_SECTION_OF: dict[str, Section | None] = {
    "findings": "findings",
    "impression": "impression",
    "conclusion": "impression",
    "conclusions": "impression",
    "summary": "impression",
    "opinion": "impression",
}
# A sentence ends at . ! ? followed by space and an upper-case letter or digit, except after a
# few abbreviations that radiology reports use; a line break or a list bullet also ends one.
_ABBREVIATIONS = ("approx.", "dr.", "e.g.", "i.e.", "vs.", "cf.", "no.", "fig.", "st.")
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])|\s*\n\s*")
_BULLET = re.compile(r"(?m)^[ \t]*(?:[-*\u2022]|\d{1,2}[.)])[ \t]+")


@dataclass(frozen=True)
class Statement:
    number: int
    section: Section
    text: str


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    pending = ""
    for piece in _BOUNDARY.split(_BULLET.sub("\n", text.strip())):
        piece = piece.strip()
        if not piece:
            continue
        pending = f"{pending} {piece}".strip() if pending else piece
        if pending.lower().endswith(_ABBREVIATIONS):
            continue
        out.append(pending)
        pending = ""
    if pending:
        out.append(pending)
    return [s for s in out if any(ch.isalnum() for ch in s)]


def split_statements(report: str) -> list[Statement]:
    """Number the findings and impression sentences of ``report``, from 1, in reading order."""
    parts: list[tuple[Section | None, str]] = []
    last = 0
    current: Section | None = "findings"
    for m in _HEADING.finditer(report):
        parts.append((current, report[last : m.start()]))
        current = _SECTION_OF.get(m.group("name").lower())
        last = m.end()
    parts.append((current, report[last:]))
    statements: list[Statement] = []
    for section, text in parts:
        if section is None:
            continue
        for sentence in _sentences(text):
            statements.append(Statement(len(statements) + 1, section, sentence))
    return statements
