"""Find identifiers in running text that no header and no intake field names.

The detector is UCSF's Philter, in its maintained packaged fork philter-lite (BSD-3-Clause):
its filter engine (:func:`philter_lite.detect_phi`), its regular-expression database (dates,
addresses, facilities, salutations, contacts, ids, ages over 89) and its name lists (97,014
first names, 161,470 last names, 195,253 words that are not names), configured for radiology by
``phi_filters.toml`` beside this module:

- clinical terms are marked safe before any PHI filter runs (Philter's include filters):
  eponyms with their head word or grade ("Baker cyst", "Bosniak IIF"), reporting and staging
  systems ("PI-RADS 4", "T2N0M0"), measurements and vertebral levels (``clinical_terms.toml``);
- a few radiology filters Philter lacks (URLs and IPs, labelled ids and phone numbers,
  international numbers, dates with a time, facilities, names after a title or a role in any
  case) are added to its database as ``secondread.*``.

Philter tags parts of speech with NLTK's perceptron tagger, whose data NLTK downloads at run
time (impossible here, and never done in production). Its name lists are used only for proper
nouns, so secondread gives Philter a tagger of word shape instead (:func:`shape_tags`): a
capitalised word that is not one of Philter's common words is ``NNP``, a number ``CD``.
Names in lower case are found by context (titles, roles), not by the lists. NLTK itself is never
imported (:func:`_import_philter`).

The detector is built once per process (0.2 s): :func:`detector` builds it on first use, never
at import; the service calls it at start-up. Philter's name lists (0.1 s more) are read on the
first proper-noun candidate (:class:`LazyWords`).
"""

from __future__ import annotations

import re
import sys
import threading
import tomllib
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from importlib.resources import files
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Final

PHI_TYPES: Final = ("NAME", "ORG", "ADDRESS", "DATE", "PHONE", "ID", "EMAIL", "URL", "IP", "AGE")
"""The categories the detector reports; each becomes the placeholder ``[TYPE]``."""
MEMO_LIMIT: Final = 100_000
"""Short texts whose spans a detector remembers before it forgets them all."""
_MEMO_CHARS: Final = 256
PLACEHOLDER_WORDS: Final = frozenset({*PHI_TYPES, "BIRTHDATE"})
"""The words of the placeholders a text may already hold (``[NAME]``): never proper nouns."""
_PRIORITY: Final = ("EMAIL", "URL", "IP", "DATE", "PHONE", "ID", "AGE", "ORG", "ADDRESS", "NAME")

# Label words a context filter matches in front of the identifier; kept in the output.
_KEPT_PREFIX: Final = re.compile(
    r"""(?xi)(?:
        (?:at|in|of|from|to|the|near|with|by|and|on|for|per|via|seen|cc)\s+
      |
        (?:dr|doctor|mr|mrs|ms|miss|mx|prof|professor|nurse|sister|sr)\b\.?\s+
      | (?:husband|wife|son|daughter|mother|father|brother|sister|partner|spouse|friend|uncle|
           aunt|niece|nephew|grandson|granddaughter|grandmother|grandfather|guardian|caregiver|
           carer|fianc[eé]e?|boyfriend|girlfriend|neighbou?r|colleague|technologist|radiographer|
           sonographer|nurse|secretary|assistant|resident|fellow|attending|referrer)\b,?\s+
           (?:named\s+|called\s+)?
      | (?:mrn|medical\s+record(?:\s+(?:number|no))?|record|chart|acct|account|accession|acc|
           encounter|visit|case|member|policy|insurance|licen[cs]e|lic|dea|npi|device|serial|s/n|
           lot|ssn|social\s+security(?:\s+number)?|passport|nhs(?:\s+number)?|patient\s+id|id|
           order|requisition|specimen|ref(?:erence)?|pin|badge|employee|tel|telephone|phone|ph|
           mobile|mob|cell|cellphone|fax|pager|beeper|bleep|ext|extension|zip(?:\s*code)?|
           postal\s*code|postcode|post\s*code)
        \b\.?\s*(?:(?:no|num|number|nr)\b\.?\s*|\#\s*)?[:\#]?\s*
    )"""
)


@dataclass(frozen=True)
class Span:
    """An identifier found in a text: ``text[start:end]``, of category ``phi_type``."""

    start: int
    end: int
    phi_type: str


def _alternation(terms: Iterable[str]) -> str:
    """Terms as one alternation, longest first; a hyphen or a space inside matches either."""
    parts = []
    for term in sorted(set(terms), key=len, reverse=True):
        parts.append(r"[\s-]".join(re.escape(p) for p in re.split(r"[\s-]", term)))
    return "|".join(parts)


def clinical_patterns(vocabulary: Mapping[str, Any]) -> dict[str, str]:
    """The ``eponym`` and ``score`` regular expressions built from ``clinical_terms.toml``."""
    eponyms = _alternation(vocabulary["eponyms"])
    heads = _alternation(vocabulary["head_words"])
    grade = r"(?:[IVX]{1,4}[A-F]?|\d{1,2}[A-F]?(?:\s?\+\s?\d)?(?:\s?=\s?\d{1,2})?|[A-D])\b"
    qualifier = r"(?:type|class|grade|stage|category|score|level|classification)"
    # Possessive without a head word ("history of Crohn's") is clinical too.
    eponym = (
        rf"(?:\bnon-?|\bpost-?)?\b(?:{eponyms})"
        rf"(?:(?:'s|’s|s'|s|'|’)?\s(?:{heads})(?:s|es)?\b"
        rf"|(?:'s|’s)?\s(?:{qualifier}\s)?{grade}"
        rf"|(?:'s|’s)(?!\w))"
    )
    systems = _alternation(vocabulary["systems"])
    score = (
        rf"\b(?:{systems})\b(?:\s?(?:{qualifier}|criteria|guidelines?|levels?)\b)?"
        rf"(?:\s?:?\s?(?:[0-6][A-Ca-c]?(?:\s?/\s?[0-6])?|[IVX]{{1,4}}[A-F]?)\b)?"
    )
    return {"eponym": eponym, "score": score}


def shape_tags(tokens: Sequence[str], text: str, common: Container[str]) -> list[tuple[str, str]]:
    """Part-of-speech tags of word shape for Philter's ``tokens`` of ``text``.

    A capitalised (or all-capitals) word is ``NNP`` unless it is one of Philter's 195,253
    words that are not names (``nonames``: "Chest", "Brown", "Will"), an acronym of up to
    three capitals ("TSE", "GRE") or a roman numeral; in all-capitals text (DICOM
    descriptors) no word is a proper noun by shape. A number is ``CD``, everything else
    ``NN``. Names that are also common words are found by context (titles, roles,
    neighbouring names), as in Philter itself.
    """
    shouting = not any(c.islower() for c in text)
    tagged: list[tuple[str, str]] = []
    for tok in tokens:
        if tok.isspace():
            tag = "SP"
        elif tok.isdigit():
            tag = "CD"
        elif shouting or not tok[:1].isupper() or tok in PLACEHOLDER_WORDS or _acronym(tok):
            tag = "NN"
        elif tok.lower() in common:
            tag = "NN"
        else:
            tag = "NNP"
        tagged.append((tok, tag))
    return tagged


class PhiDetector:
    """Philter configured for radiology free text (see the module docstring).

    Parameters
    ----------
    config
        The filter configuration (``phi_filters.toml``).
    vocabulary
        The clinical terms to keep (``clinical_terms.toml``).
    """

    def __init__(self, config: Mapping[str, Any], vocabulary: Mapping[str, Any]) -> None:
        tagger = SimpleNamespace(pos_tag=self._pos_tag)
        philter_module = _import_philter(tagger)
        from philter_lite import filter_from_dict
        from philter_lite.filters import RegexFilter, SetFilter, filter_db

        ours = {**config["secondread"], **clinical_patterns(vocabulary)}
        regex_db = {**filter_db.regex_db, "secondread": ours}
        names = filter_db.set_db
        self._filters = [
            # A name-list filter gets its list lazily (Philter only asks it about a proper
            # noun); filter_from_dict would copy the whole list into a set at once.
            SetFilter(
                title=f["title"],
                type="set",
                exclude=f["exclude"],
                phi_type=f.get("phi_type", "OTHER"),
                pos=set(f["pos"]),
                data=LazyWords(partial(names.__getitem__, f["keyword"])),  # type: ignore[arg-type]
            )
            if f["type"] == "set"
            else filter_from_dict(  # type: ignore[no-untyped-call]  # philter-lite: untyped
                f,
                regex_db=regex_db,
                regex_context_db=filter_db.regex_context_db,
                set_db=names,
            )
            for f in config["filters"]
        ]
        # Philter lets a context filter override safe text; clinical terms must win always.
        self._clinical = [
            f.data for f in self._filters if not f.exclude and isinstance(f, RegexFilter)
        ]
        self._common = LazyWords(lambda: names["nonames"])
        self._philter: ModuleType = philter_module
        # The tagger needs the text being checked, which is per thread (the service checks in
        # worker threads).
        self._current = threading.local()
        self._memo: dict[str, tuple[Span, ...]] = {}

    def _pos_tag(self, tokens: Sequence[str]) -> list[tuple[str, str]]:
        return shape_tags(tokens, self._current.text, self._common)

    def _identifying(self, text: str) -> bool:
        """Whether a stretch has a digit or a word that is not a common one."""
        return any(c.isdigit() for c in text) or any(
            w.lower() not in self._common for w in re.findall(r"[A-Za-z]{2,}", text)
        )

    def find(self, text: str) -> list[Span]:
        """The identifiers of ``text``, in order, not overlapping; label words left out.

        Short texts (DICOM descriptors repeat across series, studies and patients) are
        remembered, up to :data:`MEMO_LIMIT` of them.
        """
        if not text or not any(c.isalnum() for c in text):
            return []
        if len(text) > _MEMO_CHARS:
            return self._find(text)
        found = self._memo.get(text)
        if found is None:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[text] = tuple(self._find(text))
        return list(found)

    def _find(self, text: str) -> list[Span]:
        self._current.text = text
        _include, _exclude, tracker = self._philter.detect_phi(
            text, self._filters, phi_type_list=list(PHI_TYPES)
        )
        safe = sorted((m.start(), m.end()) for p in self._clinical for m in p.finditer(text))
        pieces: list[Span] = []
        for e in tracker.phi:
            span = Span(e.start, e.stop, e.phi_type)
            rest = _outside(span, safe)
            if rest != [span] or _beside(span, safe):
                # Cut by clinical text, or found by a context filter that read a clinical
                # term as a name ("Salter-Harris II. No"): it must still look like PHI.
                rest = [p for p in rest if self._identifying(text[p.start : p.end])]
            pieces.extend(rest)
        # Where filters of two categories overlap, the longer span names the category (a date
        # that starts with a month that is also a first name is a date), then _PRIORITY.
        pieces.sort(key=lambda s: (s.start, s.start - s.end, _PRIORITY.index(s.phi_type)))
        out: list[Span] = []
        for span in pieces:
            start, end = _trim(text, span.start, span.end)
            if out and start < out[-1].end:
                last = out[-1]
                if end <= last.end:
                    continue
                if span.phi_type == last.phi_type:
                    out[-1] = Span(last.start, end, last.phi_type)
                    continue
                # Another category: only what lies beyond the span before is this one's.
                start, end = _trim(text, last.end, end)
            if end > start:
                out.append(Span(start, end, span.phi_type))
        return out


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """``start, end`` without the label words in front and the punctuation around."""
    while (prefix := _KEPT_PREFIX.match(text, start, end)) and prefix.end() < end:
        start = prefix.end()
    while start < end and not text[start].isalnum() and text[start] not in "+(":
        start += 1
    while end > start and not text[end - 1].isalnum() and text[end - 1] not in ")":
        end -= 1
    return start, end


_ROMAN: Final = re.compile(r"[IVX]{1,4}")


def _acronym(tok: str) -> bool:
    """Up to three capitals (TSE, GRE, DWI), or a roman numeral (Chiari II, type IV): a word
    of the trade, not a name."""
    return (len(tok) <= 3 and tok.isupper()) or _ROMAN.fullmatch(tok) is not None


def _beside(span: Span, safe: Sequence[tuple[int, int]], gap: int = 3) -> bool:
    """Whether a safe interval ends or starts within ``gap`` characters of ``span``."""
    return any(
        span.start - gap <= s_end <= span.start or span.end <= s_start <= span.end + gap
        for s_start, s_end in safe
    )


def _outside(span: Span, safe: Sequence[tuple[int, int]]) -> list[Span]:
    """The parts of ``span`` that no safe interval covers."""
    pieces = [span]
    for s_start, s_end in safe:
        if s_start >= span.end:
            break
        nxt: list[Span] = []
        for p in pieces:
            if s_end <= p.start or s_start >= p.end:
                nxt.append(p)
                continue
            if s_start > p.start:
                nxt.append(Span(p.start, s_start, p.phi_type))
            if s_end < p.end:
                nxt.append(Span(s_end, p.end, p.phi_type))
        pieces = nxt
    return pieces


def _import_philter(tagger: SimpleNamespace) -> ModuleType:
    """``philter_lite.philter``, its ``nltk`` name bound to ``tagger``.

    Philter's one use of NLTK is ``nltk.pos_tag(tokens)``, whose tagger data NLTK downloads at
    run time. When NLTK is not imported yet, ``tagger`` stands in for it while philter-lite is
    imported (NLTK's own import takes 0.4 s and is never needed), and is taken out of
    ``sys.modules`` again right after, so nothing else in the process sees it.
    """
    stand_in = "nltk" not in sys.modules
    if stand_in:
        sys.modules["nltk"] = tagger  # type: ignore[assignment]
    try:
        import philter_lite.philter as philter_module
    finally:
        if stand_in:
            del sys.modules["nltk"]
    philter_module.nltk = tagger  # type: ignore[attr-defined]
    return philter_module


def _load_toml(name: str) -> dict[str, Any]:
    return tomllib.loads(files(__package__).joinpath(name).read_text(encoding="utf-8"))


@cache
def detector() -> PhiDetector:
    """The process's detector, built on first use (0.2 s)."""
    _fast_philter_data()
    return PhiDetector(_load_toml("phi_filters.toml"), _load_toml("clinical_terms.toml"))


def _fast_philter_data() -> None:
    """Load philter-lite's data files faster than its own module does.

    ``philter_lite.filters.filter_db`` parses its 5.5 MB name lists with ``tomllib`` at import
    (3 s here). This registers a module of the same name before philter-lite is imported: the
    two small regex files read with ``tomllib``, the name lists as :class:`NameLists`, split as
    plain strings (0.08 s) on first use. A test checks that both give the same data.
    """
    name = "philter_lite.filters.filter_db"
    if name in sys.modules:
        return
    import importlib.util

    spec = importlib.util.find_spec("philter_lite")
    if spec is None or not spec.submodule_search_locations:
        return  # not installed: the import in PhiDetector raises the clear error
    # The package's folder, found without importing it (its import would load the slow way).
    base = Path(next(iter(spec.submodule_search_locations))) / "filters"
    module = ModuleType(name)
    module.regex_db = tomllib.loads((base / "regex.toml").read_text("utf-8"))  # type: ignore[attr-defined]
    module.regex_context_db = tomllib.loads(  # type: ignore[attr-defined]
        (base / "regex_context.toml").read_text("utf-8")
    )
    module.set_db = NameLists(base / "set.toml")  # type: ignore[attr-defined]
    sys.modules[name] = module


class NameLists(Mapping[str, list[str]]):
    """philter-lite's ``set.toml``, read (by :func:`read_name_lists`) on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lists: dict[str, list[str]] | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, list[str]]:
        with self._lock:
            if self._lists is None:
                self._lists = read_name_lists(self.path.read_text("utf-8"))
            return self._lists

    def __getitem__(self, key: str) -> list[str]:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class LazyWords:
    """A word set built on the first membership test: most texts (DICOM descriptors in
    capitals, sentences of lower-case words) never ask, so never pay for 450,000 words."""

    def __init__(self, source: Callable[[], Iterable[str]]) -> None:
        self._source = source
        self._words: frozenset[str] | None = None
        self._lock = threading.Lock()

    def _get(self) -> frozenset[str]:
        words = self._words
        if words is None:
            with self._lock:
                if self._words is None:
                    self._words = frozenset(self._source())
                words = self._words
        return words

    def __contains__(self, word: object) -> bool:
        return word in self._get()


def read_name_lists(text: str) -> dict[str, list[str]]:
    """philter-lite's ``set.toml`` as lists: one ``key = [ "a", "b", ... ]`` array a line,
    split as plain strings (0.08 s, where ``tomllib`` takes 3 s). Anything else in the file
    (an escape, another layout) is read with ``tomllib``."""
    if "\\" in text:
        return tomllib.loads(text)
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(" = [")
        body = rest.strip().removesuffix("]").rstrip().removesuffix(",").strip()
        if not line.strip():
            continue
        if not (sep and key.isidentifier() and body.startswith('"') and body.endswith('"')):
            return tomllib.loads(text)
        out[key] = body[1:-1].split('", "')
    return out
