"""Evaluate the free-text PHI detector: recall per category, precision, clinical terms kept, time.

Two corpora:
- the synthetic radiology set of bench/freetext/corpus.py (planted identifiers of every
  category, and the clinical vocabulary that must survive);
- the five i2b2-format annotated notes that ship in philter-lite's package data (written and
  annotated by others, with surrogate identifiers).

Two detectors on the same texts, in the same run:
- secondread: ``Scrubber(..., detect=True)`` as the service and ``secondread deid`` run it
  (no identifier known in advance, so everything found is the detector's);
- reference: philter-lite's own stock configuration (``philter_delta.toml``) with the same
  tagger, i.e. what Philter alone finds.

Recall is measured on the scrubbed output: a planted identifier is found when none of its
words and numbers is left in the text (a date also when its original spelling is gone: a
shifted date is a found one). Precision is the share of the detector's spans that overlap a
planted identifier. Usage: ``python bench/freetext/evaluate.py [--json]``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CATEGORIES, Report, corpus, held_out

from secondread_deidentify.phi import PHI_TYPES, Span, detector
from secondread_deidentify.scrub import KnownIdentifiers, Scrubber

SHIFT = 17
_STOP = frozenset({"dr", "md", "at", "of", "the", "and", "mr", "mrs", "ms", "on", "in", "s"})
_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")
I2B2_CATEGORY = {
    "PATIENT": "names", "DOCTOR": "names", "USERNAME": "names", "DATE": "dates",
    "HOSPITAL": "locations", "MEDICALRECORD": "identifiers", "IDNUM": "identifiers",
    "PHONE": "contacts",
}  # fmt: skip


def tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"[A-Za-z0-9']+", text) if t.lower() not in _STOP]


def leaked(original: str, category: str, output: str) -> bool:
    """Whether any word or number of ``original`` survives in ``output``."""
    clean = _PLACEHOLDER.sub(" ", output)
    if category == "dates" or "@" in original or "://" in original:
        return original in clean
    for tok in tokens(original):
        if len(tok) < 3 and not (category == "ages" and tok.isdigit()):
            continue  # "CT", "4": words of the text around it too
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(tok)}(?![A-Za-z0-9])", clean, re.I):
            return True
    return False


@dataclass
class Result:
    found: dict[str, int] = field(default_factory=dict)
    planted: dict[str, int] = field(default_factory=dict)
    spans: int = 0
    true_spans: int = 0
    terms: int = 0
    terms_kept: int = 0
    times_ms: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    misses: list[tuple[str, str]] = field(default_factory=list)
    lost_terms: list[str] = field(default_factory=list)

    def recall(self, cat: str) -> float | None:
        n = self.planted.get(cat, 0)
        return self.found.get(cat, 0) / n if n else None

    def precision(self) -> float:
        return self.true_spans / self.spans if self.spans else 1.0


def evaluate(
    reports: Sequence[Report],
    scrub: Callable[[str], str],
    find: Callable[[str], list[Span]],
) -> Result:
    res = Result()
    for r in reports:
        t0 = time.perf_counter()
        out = scrub(r.text)
        res.times_ms.append((time.perf_counter() - t0) * 1000)
        res.lengths.append(len(r.text))
        for start, end, cat in r.gold:
            res.planted[cat] = res.planted.get(cat, 0) + 1
            if leaked(r.text[start:end], cat, out):
                res.misses.append((cat, r.text[start:end]))
            else:
                res.found[cat] = res.found.get(cat, 0) + 1
        for term in r.clinical:
            res.terms += 1
            if term in out:
                res.terms_kept += 1
            else:
                res.lost_terms.append(term)
        for span in find(r.text):
            res.spans += 1
            if any(span.start < e and s < span.end for s, e, _ in r.gold):
                res.true_spans += 1
    return res


def i2b2_reports() -> list[Report]:
    """philter-lite's annotated notes as reports (gold from their XML annotations)."""
    import importlib.util

    spec = importlib.util.find_spec("philter_lite")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "i2b2_xml"
    out = []
    for path in sorted(folder.glob("*.xml")):
        root = ET.parse(path).getroot()
        text = root.findtext("TEXT") or ""
        gold = []
        for tag in root.find("TAGS") or []:
            cat = I2B2_CATEGORY.get(tag.get("TYPE", ""), "identifiers")
            gold.append((int(tag.get("start", 0)), int(tag.get("end", 0)), cat))
        out.append(Report(text, gold, []))
    return out


def reference_detector() -> Callable[[str], list[Span]]:
    """philter-lite's stock ``philter_delta.toml``, run with the same tagger."""
    import importlib.util

    import philter_lite
    from philter_lite.filters import filter_db

    detector()  # installs the tagger (and the fast data load) first
    spec = importlib.util.find_spec("philter_lite")
    assert spec is not None and spec.submodule_search_locations
    cfg_path = Path(next(iter(spec.submodule_search_locations))) / "configs/philter_delta.toml"
    cfg = tomllib.loads(cfg_path.read_text())
    filters = [
        philter_lite.filter_from_dict(
            f,
            regex_db=filter_db.regex_db,
            regex_context_db=filter_db.regex_context_db,
            set_db=filter_db.set_db,
        )
        for f in cfg["filters"]
    ]
    current = detector()._current

    def find(text: str) -> list[Span]:
        current.text = text
        _inc, exc, _tracker = philter_lite.detect_phi(text, filters)
        return [Span(s, e, "PHI") for s, e in exc.filecoords()]

    return find


def reference_scrub(find: Callable[[str], list[Span]]) -> Callable[[str], str]:
    def scrub(text: str) -> str:
        out, last = [], 0
        for span in sorted(find(text), key=lambda s: s.start):
            out.append(text[last : span.start] + "[PHI]")
            last = span.end
        return "".join(out) + text[last:]

    return scrub


def summary(res: Result) -> dict[str, object]:
    times = sorted(res.times_ms)
    return {
        "recall": {c: res.recall(c) for c in CATEGORIES if res.planted.get(c)},
        "planted": res.planted,
        "precision": round(res.precision(), 4),
        "clinical_terms_kept": f"{res.terms_kept}/{res.terms}",
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "mean_chars": round(statistics.mean(res.lengths)),
        "misses": res.misses[:20],
        "lost_terms": sorted(set(res.lost_terms)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=48, help="synthetic texts (default 48)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    ours_find = detector().find
    load_s = time.perf_counter() - t0
    scrubber = Scrubber(KnownIdentifiers(), shift_days=SHIFT)
    ref_find = reference_detector()
    ref_scrub = reference_scrub(ref_find)
    synthetic = corpus(args.n)
    # 2,000-character reports alone, for the timing target
    long_reports = [r for r in synthetic if len(r.text) >= 1800]
    scrubber.scrub(synthetic[0].text)  # warm
    results = {
        "synthetic": {
            "secondread": summary(evaluate(synthetic, scrubber.scrub, ours_find)),
            "philter_stock": summary(evaluate(synthetic, ref_scrub, ref_find)),
        },
        "synthetic_long_reports": {
            "secondread": summary(evaluate(long_reports, scrubber.scrub, ours_find)),
            "philter_stock": summary(evaluate(long_reports, ref_scrub, ref_find)),
        },
        "synthetic_held_out": {
            "secondread": summary(evaluate(held_out(), scrubber.scrub, ours_find)),
            "philter_stock": summary(evaluate(held_out(), ref_scrub, ref_find)),
        },
        "i2b2": {
            "secondread": summary(evaluate(i2b2_reports(), scrubber.scrub, ours_find)),
            "philter_stock": summary(evaluate(i2b2_reports(), ref_scrub, ref_find)),
        },
        "load_s": round(load_s, 2),
        "phi_types": list(PHI_TYPES),
    }
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"detector load: {load_s:.2f} s (once per process)\n")
    for corpus_name, by_tool in results.items():
        if not isinstance(by_tool, dict) or "secondread" not in by_tool:
            continue
        ours, ref = by_tool["secondread"], by_tool["philter_stock"]
        print(f"== {corpus_name} ({ours['mean_chars']} characters a text on average)")
        print(f"{'':24}{'secondread':>14}{'philter stock':>16}")
        for cat in CATEGORIES:
            a, b = ours["recall"].get(cat), ref["recall"].get(cat)
            if a is None:
                continue
            n = ours["planted"][cat]
            print(f"{'recall ' + cat + f' ({n})':24}{a:>14.1%}{b:>16.1%}")
        print(f"{'precision (spans)':24}{ours['precision']:>14.1%}{ref['precision']:>16.1%}")
        if ours["clinical_terms_kept"] != "0/0":
            print(
                f"{'clinical terms kept':24}{ours['clinical_terms_kept']:>14}"
                f"{ref['clinical_terms_kept']:>16}"
            )
        print(f"{'time p50 (ms)':24}{ours['p50_ms']:>14}{ref['p50_ms']:>16}")
        print(f"{'time p95 (ms)':24}{ours['p95_ms']:>14}{ref['p95_ms']:>16}")
        if ours["misses"]:
            print("  secondread missed:", "; ".join(f"{c}: {t!r}" for c, t in ours["misses"]))
        if ours["lost_terms"]:
            print("  secondread lost:", ", ".join(ours["lost_terms"]))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
