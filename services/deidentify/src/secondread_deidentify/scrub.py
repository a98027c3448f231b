"""Scrub free text of the identifiers of a patient: those known, then those a detector finds.

Used for the free text of the intake (clinical question, original report) and, under the Clean
Descriptors Option (DICOM PS3.15 E.3.5), for descriptors in the headers. First, every identifier
known from the headers and the intake is replaced by a placeholder:

- person names in any order and case, and each of their parts;
- patient ids (MRN and others), accession numbers;
- the birth date, in any of the usual written forms;
- every other date, shifted by the patient's offset exactly as the image dates are (PS3.15
  E.3.6); without an offset, replaced;
- known phone numbers whatever their separators, and anything that looks like a phone number;
- known addresses, whole or by line;
- e-mail addresses, and anything labelled as an MRN.

Then the PHI detector (:mod:`secondread_deidentify.phi`, UCSF Philter configured for radiology)
finds the identifiers no header and no intake field names: people, organisations, addresses,
dates, contacts, ids and ages over 89, each replaced by its typed placeholder. A date it finds
that can be read whole is shifted like every other date instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Final

from secondread_deidentify.dates import parse_da, shift_date

NAME: Final = "[NAME]"
ID: Final = "[ID]"
DOB: Final = "[BIRTHDATE]"
DATE: Final = "[DATE]"
PHONE: Final = "[PHONE]"
ADDRESS: Final = "[ADDRESS]"
EMAIL: Final = "[EMAIL]"
ORG: Final = "[ORG]"
URL: Final = "[URL]"
IP: Final = "[IP]"
AGE: Final = "[AGE]"
PLACEHOLDERS: Final = (NAME, ID, DOB, DATE, PHONE, ADDRESS, EMAIL, ORG, URL, IP, AGE)

# Titles and particles that are not identifying on their own.
_NOT_A_NAME: Final = frozenset(
    {"dr", "mr", "mrs", "ms", "miss", "prof", "md", "phd", "jr", "sr", "ii", "iii", "de", "la"}
)
_MONTHS: Final = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTH_RE: Final = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE_RE: Final = re.compile(
    r"(?<![\w/.-])(?:"
    r"(?P<iy>\d{4})(?P<isep>[-/.])(?P<im>\d{1,2})(?P=isep)(?P<id>\d{1,2})"
    r"|(?P<a>\d{1,2})(?P<nsep>[-/.])(?P<b>\d{1,2})(?P=nsep)(?P<ny>\d{4})"
    r"|(?P<compact>(?:19|20)\d{6})"
    r"|(?P<wd>\d{1,2})(?:st|nd|rd|th)?\s+(?P<wm>" + _MONTH_RE + r")\.?,?\s+(?P<wy>\d{4})"
    r"|(?P<mm>" + _MONTH_RE + r")\.?\s+(?P<md>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<my>\d{4})"
    r")(?![\w/-])",
    re.IGNORECASE,
)
# What may follow a whole date in the same stretch: its time of day (kept: a whole-day shift
# leaves the time of day as it is, as for DICOM TM).
_TIME_OF_DAY_RE: Final = re.compile(
    r",?\s*(?:(?:at\s+|@\s*)?\d{1,2}[:h.]\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?|\s*h(?:rs)?)?)?",
    re.IGNORECASE,
)
_EMAIL_RE: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MRN_RE: Final = re.compile(
    r"\b(MRN|medical record(?: number)?)(\s*(?:no\.?|#|:)?\s*)([\w-]+)", re.I
)
_PHONE_RE: Final = re.compile(
    r"(?<![\w.+-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{1,4}[\s.-])?"
    r"\d{3,4}[\s.-]?\d{3,4}(?![\w-])"
)
_MERGE_RE: Final = re.compile(r"\[(NAME|ORG|ID)\](?:[\s,^]+\[\1\])+")


def _month(name: str) -> int:
    low = name.lower()[:3]
    return next(i for i, m in enumerate(_MONTHS, 1) if m.startswith(low))


def _date(y: str, m: str | int, d: str) -> date | None:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        return None


@dataclass(frozen=True)
class KnownIdentifiers:
    """What the PHI zone knows about one patient (headers and intake). Never logged.

    Parameters
    ----------
    names
        Person names: DICOM PN (``Family^Given^Middle``) or written ("Given Family").
    ids
        Patient ids, other ids, accession numbers.
    birth_date
        DICOM DA of the birth date.
    phones, addresses, emails, organisations, other
        Further known identifiers; ``organisations`` (institution names) are replaced as
        :data:`ORG`, ``other`` as :data:`ID`.
    """

    names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    birth_date: str = ""
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    organisations: tuple[str, ...] = ()
    other: tuple[str, ...] = ()

    def merged(self, more: KnownIdentifiers) -> KnownIdentifiers:
        """Both sets together (the first non-empty birth date wins)."""
        return KnownIdentifiers(
            names=_unique(self.names + more.names),
            ids=_unique(self.ids + more.ids),
            birth_date=self.birth_date or more.birth_date,
            phones=_unique(self.phones + more.phones),
            addresses=_unique(self.addresses + more.addresses),
            emails=_unique(self.emails + more.emails),
            organisations=_unique(self.organisations + more.organisations),
            other=_unique(self.other + more.other),
        )

    def values(self) -> list[str]:
        """Every non-empty known value."""
        vals = [*self.names, *self.ids, self.birth_date, *self.phones, *self.addresses]
        more = (*self.emails, *self.organisations, *self.other)
        return [v for v in (*vals, *more) if v and v.strip()]


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def name_parts(name: str) -> list[str]:
    """The identifying parts of a person name (PN components or words), titles left out."""
    parts = [p for p in re.split(r"[\^=\s,.]+", name) if p]
    return [p for p in parts if len(p) >= 2 and p.lower() not in _NOT_A_NAME]


def _alternation(terms: Iterable[str]) -> str:
    ordered = sorted({t for t in terms if t}, key=len, reverse=True)
    return "|".join(re.escape(t) for t in ordered)


def _digits_pattern(phone: str) -> str | None:
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 5:
        return None
    return r"\+?" + r"[\s().-]*".join(digits)


class Scrubber:
    """Replaces the identifiers of one patient in free text: the known ones, then (with
    ``detect``) those the PHI detector finds.

    Parameters
    ----------
    known
        The identifiers to replace.
    shift_days
        The patient's date shift (PS3.15 E.3.6); ``None`` replaces every date with
        :data:`DATE`.
    dayfirst
        How to read an ambiguous ``nn/nn/yyyy`` (``03/04/2026``): day first (Europe) or month
        first (US). Unambiguous dates are read as written.
    detect
        Also replace what the PHI detector finds (the default). ``False`` replaces the known
        identifiers only.
    """

    def __init__(
        self,
        known: KnownIdentifiers,
        *,
        shift_days: int | None,
        dayfirst: bool = False,
        detect: bool = True,
    ) -> None:
        self.shift_days = shift_days
        self.dayfirst = dayfirst
        self.detect = detect
        self.birth = parse_da(known.birth_date) if known.birth_date else None
        self._emails = self._compile(known.emails, word=False)
        self._ids = self._compile((*known.ids, *known.other), word=True)
        self._orgs = self._compile(known.organisations, word=True)
        lines: list[str] = []
        for addr in known.addresses:
            lines.append(addr)
            lines.extend(p for p in re.split(r"[\^,\n;]+", addr) if len(p.strip()) >= 4)
        self._addresses = self._compile([p.strip() for p in lines], word=True)
        phone_parts = [p for p in (_digits_pattern(x) for x in known.phones) if p]
        self._phones = (
            re.compile(r"(?<![\w])(?:" + "|".join(phone_parts) + r")(?!\d)")
            if phone_parts
            else None
        )
        parts: list[str] = []
        for name in known.names:
            parts.extend(name_parts(name))
        self._names = self._compile(parts, word=True)

    @staticmethod
    def _compile(terms: Iterable[str], *, word: bool) -> re.Pattern[str] | None:
        alt = _alternation(terms)
        if not alt:
            return None
        if word:
            return re.compile(rf"(?<!\w)(?:{alt})(?!\w)", re.IGNORECASE)
        return re.compile(alt, re.IGNORECASE)

    def _date_repl(self, m: re.Match[str]) -> str:
        g = m.groupdict()
        found: date | None
        render: str
        if g["iy"]:
            found = _date(g["iy"], g["im"], g["id"])
            sep = g["isep"]
            render = f"%Y{sep}%m{sep}%d"
        elif g["ny"]:
            a, b, sep = int(g["a"]), int(g["b"]), g["nsep"]
            dayfirst = a > 12 or (b <= 12 and self.dayfirst)
            day, month = (a, b) if dayfirst else (b, a)
            found = _date(g["ny"], month, str(day))
            render = f"%d{sep}%m{sep}%Y" if dayfirst else f"%m{sep}%d{sep}%Y"
        elif g["compact"]:
            found = parse_da(g["compact"])
            render = "%Y%m%d"
        elif g["wy"]:
            found = _date(g["wy"], _month(g["wm"]), g["wd"])
            render = "%d %B %Y"
        else:
            found = _date(g["my"], _month(g["mm"]), g["md"])
            render = "%B %d, %Y"
        if found is None:
            return m.group(0)
        if self.birth is not None and found == self.birth:
            return DOB
        if self.shift_days is None:
            return DATE
        return shift_date(found, self.shift_days).strftime(render)

    @staticmethod
    def _phone_repl(m: re.Match[str]) -> str:
        text = m.group(0)
        digits = sum(c.isdigit() for c in text)
        if digits < 7 or digits > 15:
            return text
        if text.isdigit() and parse_da(text) is not None:
            return text  # a (shifted) compact date
        return PHONE if re.search(r"[\s().+-]", text) else ID

    def _plain_repl(self, text: str) -> str:
        """Dates and phone-like numbers of a stretch the detector left: shifted or replaced."""
        return _PHONE_RE.sub(self._phone_repl, _DATE_RE.sub(self._date_repl, text))

    def _found_repl(self, text: str, phi_type: str) -> str:
        """What replaces a stretch the detector found: its placeholder, or for a stretch that
        is one whole date (and perhaps its time of day), the date shifted."""
        if phi_type == "DATE":
            m = _DATE_RE.match(text)
            if m is not None and _TIME_OF_DAY_RE.fullmatch(text, m.end()):
                shifted = self._date_repl(m)
                if shifted != m.group(0):
                    return shifted + text[m.end() :]
            return DATE
        return f"[{phi_type}]"

    def scrub(self, text: str) -> str:
        """``text`` with every identifier replaced by its placeholder (dates shifted)."""
        if not text:
            return text
        if self._emails is not None:
            text = self._emails.sub(EMAIL, text)
        text = _EMAIL_RE.sub(EMAIL, text)
        if self._ids is not None:
            text = self._ids.sub(ID, text)
        text = _MRN_RE.sub(lambda m: m.group(1) + m.group(2) + ID, text)
        if self._addresses is not None:
            text = self._addresses.sub(ADDRESS, text)
        if self._orgs is not None:
            text = self._orgs.sub(ORG, text)
        if self._phones is not None:
            text = self._phones.sub(PHONE, text)
        if self._names is not None:
            text = self._names.sub(NAME, text)
        if self.detect:
            text = self._detected(text)
        else:
            text = self._plain_repl(text)
        return _MERGE_RE.sub(lambda m: f"[{m.group(1)}]", text)

    def _detected(self, text: str) -> str:
        from secondread_deidentify.phi import detector

        out: list[str] = []
        last = 0
        for span in detector().find(text):
            out.append(self._plain_repl(text[last : span.start]))
            out.append(self._found_repl(text[span.start : span.end], span.phi_type))
            last = span.end
        out.append(self._plain_repl(text[last:]))
        return "".join(out)


def scrub_text(
    text: str,
    known: KnownIdentifiers,
    *,
    shift_days: int | None,
    dayfirst: bool = False,
    detect: bool = True,
) -> str:
    """Replace every identifier of ``known`` in ``text``, and (with ``detect``) every one the
    PHI detector finds (see :class:`Scrubber`)."""
    return Scrubber(known, shift_days=shift_days, dayfirst=dayfirst, detect=detect).scrub(text)
