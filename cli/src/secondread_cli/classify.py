"""``secondread classify PATH``: run routing's subspecialty rules over a study's DICOM headers.

Reads, from every DICOM file under PATH (a file, or a folder holding one study), what
deidentify passes on to routing: Modality, BodyPartExamined, StudyDescription, SeriesDescription,
the Code Meanings of ProcedureCodeSequence and RequestedProcedureCodeSequence (PS3.3 §10.13),
and PatientAge. Pixel data is not read. Nothing is written or sent anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secondread_routing.rules import CaseFacts, Classification, Rules

PROCEDURE_CODE_KEYWORDS = ("ProcedureCodeSequence", "RequestedProcedureCodeSequence")


class ClassifyError(Exception):
    """PATH holds no DICOM study, or more than one."""


@dataclass
class StudyHeaders:
    files: int = 0
    study_uids: set[str] = field(default_factory=set)
    modalities: list[str] = field(default_factory=list)
    body_parts: list[str] = field(default_factory=list)
    study_descriptions: list[str] = field(default_factory=list)
    series_descriptions: list[str] = field(default_factory=list)
    procedure_codes: list[str] = field(default_factory=list)
    patient_age: str = ""

    def add(self, ds: Any) -> None:
        def text(keyword: str) -> str:
            return str(ds.get(keyword, "") or "").strip()

        self.files += 1
        uid = text("StudyInstanceUID")
        if uid:
            self.study_uids.add(uid)
        for value, into in (
            (text("Modality").upper(), self.modalities),
            (text("BodyPartExamined").upper(), self.body_parts),
            (text("StudyDescription"), self.study_descriptions),
            (text("SeriesDescription"), self.series_descriptions),
        ):
            if value and value not in into:
                into.append(value)
        for keyword in PROCEDURE_CODE_KEYWORDS:
            for item in ds.get(keyword) or ():
                meaning = str(item.get("CodeMeaning", "") or "").strip()
                if meaning and meaning not in self.procedure_codes:
                    self.procedure_codes.append(meaning)
        self.patient_age = self.patient_age or text("PatientAge")

    def facts(self, question: str = "") -> CaseFacts:
        return CaseFacts(
            modalities=tuple(self.modalities),
            body_parts=tuple(self.body_parts),
            study_descriptions=tuple(self.study_descriptions),
            series_descriptions=tuple(self.series_descriptions),
            procedure_codes=tuple(self.procedure_codes),
            patient_age=self.patient_age,
            clinical_question=question,
        )


def read_headers(path: Path) -> StudyHeaders:
    """The headers of the study at ``path``; :class:`ClassifyError` when there is none or more
    than one."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    if not path.exists():
        raise ClassifyError(f"{path}: no such file or folder")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    headers = StudyHeaders()
    for f in files:
        try:
            ds = dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        headers.add(ds)
    if headers.files == 0:
        raise ClassifyError(f"{path}: no DICOM file found")
    if len(headers.study_uids) > 1:
        raise ClassifyError(
            f"{path}: holds {len(headers.study_uids)} studies; classify one study at a time"
        )
    return headers


def result(headers: StudyHeaders, decided: Classification, rules: Rules) -> dict[str, Any]:
    """The ``--json`` object: the decision and the inputs it read."""
    return {
        "subspecialty": decided.subspecialty,
        "rule": decided.rule,
        "flags": list(decided.flags),
        "rules_file": rules.source,
        "inputs": {
            "files": headers.files,
            "modalities": headers.modalities,
            "body_parts": headers.body_parts,
            "study_descriptions": headers.study_descriptions,
            "series_descriptions": headers.series_descriptions,
            "procedure_codes": headers.procedure_codes,
            "patient_age": headers.patient_age,
        },
    }
