"""The DICOMweb proxy's rules: which study a request names, whether the reader may read it, and
what the archive is asked instead. Pure: no HTTP library, no I/O.

The resources are those of DICOM PS3.18 (Web Services), section 10.4 (WADO-RS: study, series,
instance, metadata, frames, bulkdata, rendered) and 10.6 (QIDO-RS searches). Every WADO-RS
resource sits under ``studies/{StudyInstanceUID}``, so one study UID decides it. A QIDO-RS search
is narrowed to the studies the reader may read: a study-level search is sent with
``StudyInstanceUID`` set to those studies (UID list matching, PS3.18 8.3.4.1 and PS3.4
C.2.2.2.2), and its answer is filtered again; a search of series or instances across studies must
name its studies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from secondread_reporting.errors import Forbidden, InvalidInput, NotFound

STUDY_UID_PARAMS = frozenset({"studyinstanceuid", "0020000d"})
"""The query keys that name a study (by keyword or by tag, PS3.18 8.3.4.1), lower-cased."""
STUDY_UID_TAG = "0020000D"
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.,_-]*$")
"""A path segment the proxy passes on: resource names, UIDs, frame lists, bulkdata tags."""

Query = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Forward:
    """What to ask the archive's DICOMweb root for a reader's request.

    ``path`` is relative to the root (``studies/1.2.3/series``); ``query`` is sent as given.
    ``keep_studies`` is set for a study-level search: the answer (a JSON array of study
    datasets) keeps only these studies. ``empty`` means the answer is known without asking: the
    reader may read no study, and the search finds nothing.
    """

    path: str
    query: tuple[tuple[str, str], ...] = ()
    keep_studies: frozenset[str] | None = None
    empty: bool = False

    @property
    def query_string(self) -> str:
        return urlencode(self.query, safe=",")


def is_uid(value: str) -> bool:
    """A DICOM UID: dot-separated numbers without leading zeros, at most 64 characters
    (PS3.5 9.1)."""
    return 0 < len(value) <= 64 and bool(_UID.match(value))


def _segments(path: str) -> list[str]:
    parts = [p for p in path.strip("/").split("/")]
    if parts == [""]:
        raise NotFound("name a DICOMweb resource: studies, studies/{StudyInstanceUID}/...")
    for part in parts:
        if part in ("", ".", "..") or not _SEGMENT.match(part):
            raise InvalidInput(f"{part!r} is not a DICOMweb path segment", code="bad_path")
    return parts


def requested_studies(query: Query) -> set[str]:
    """The StudyInstanceUIDs a query names (``StudyInstanceUID`` or ``0020000D``; a value may
    list several, comma- or backslash-separated)."""
    named: set[str] = set()
    for key, value in query:
        if key.lower() in STUDY_UID_PARAMS:
            named.update(u.strip() for u in re.split(r"[,\\]", value) if u.strip())
    return named


def _without_study_params(query: Query) -> list[tuple[str, str]]:
    return [(k, v) for k, v in query if k.lower() not in STUDY_UID_PARAMS]


def _not_yours(uids: Iterable[str]) -> Forbidden:
    listed = ", ".join(sorted(uids))
    return Forbidden(
        f"study {listed} is not in any of your open cases: the viewer shows the studies of your "
        "open cases, their priors and their earlier opinions only",
        code="study_not_readable",
    )


def plan(path: str, query: Query, readable: frozenset[str]) -> Forward:
    """Decide a reader's DICOMweb request against the studies they may read.

    Raises
    ------
    Forbidden
        The request names a study the reader may not read (or a search that names no study
        where one is needed); the message says which.
    InvalidInput
        A path segment or a study UID that is not one.
    NotFound
        A path that is not a DICOMweb resource the proxy serves.
    """
    parts = _segments(path)
    head = parts[0]
    if head == "studies" and len(parts) == 1:
        return _study_search(query, readable)
    if head == "studies":
        uid = parts[1]
        if not is_uid(uid):
            raise InvalidInput(f"{uid!r} is not a StudyInstanceUID", code="bad_uid")
        if uid not in readable:
            raise _not_yours([uid])
        return Forward("/".join(parts), tuple(query))
    if head in ("series", "instances") and len(parts) == 1:
        named = requested_studies(query)
        if not named:
            raise Forbidden(
                f"a search of {head} across studies must name its study: add StudyInstanceUID "
                f"(or search studies/{{StudyInstanceUID}}/{head})",
                code="study_required",
            )
        if named - readable:
            raise _not_yours(named - readable)
        return Forward(head, tuple(query))
    raise NotFound(f"/{'/'.join(parts)} is not a DICOMweb resource this proxy serves")


def _study_search(query: Query, readable: frozenset[str]) -> Forward:
    named = requested_studies(query)
    for uid in named:
        if not is_uid(uid):
            raise InvalidInput(f"{uid!r} is not a StudyInstanceUID", code="bad_uid")
    if named and not named & readable:
        raise _not_yours(named)
    targets = frozenset(named & readable) if named else readable
    if not targets:
        return Forward("studies", keep_studies=frozenset(), empty=True)
    narrowed = [*_without_study_params(query), ("StudyInstanceUID", ",".join(sorted(targets)))]
    return Forward("studies", tuple(narrowed), keep_studies=targets)


def keep_studies(datasets: list[Any], keep: frozenset[str]) -> list[Any]:
    """The study-level search results (DICOM JSON, PS3.18 F.2) whose StudyInstanceUID is in
    ``keep``; anything else (and anything malformed) is dropped."""
    out = []
    for ds in datasets:
        if not isinstance(ds, dict):
            continue
        values = (ds.get(STUDY_UID_TAG) or {}).get("Value") or []
        if values and values[0] in keep:
            out.append(ds)
    return out


def viewer_url(base: str, study_uids: Sequence[str]) -> str:
    """The OHIF viewer on ``study_uids`` (the first is the current study): several studies open
    side by side with OHIF's comparison hanging protocol (``@ohif/hpCompare``), the first beside
    the second.

    ``base`` is where the viewer is served (``/viewer/`` on reporting, or an absolute URL).
    """
    seen = list(dict.fromkeys(u for u in study_uids if u))
    params: list[tuple[str, str]] = [("StudyInstanceUIDs", ",".join(seen))]
    if len(seen) > 1:
        params.append(("hangingProtocolId", "@ohif/hpCompare"))
    root = base if base.endswith("/") else base + "/"
    return f"{root}viewer?{urlencode(params, safe=',@/')}"
