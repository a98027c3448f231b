"""The second-opinion report: the draft a reader edits, what signing requires of it, and the
signed document (``schema_version`` 1).

Pure: pydantic models and functions, no I/O.

Discrepancy grades follow RADPEER (American College of Radiology, 2016 revision):

- ``1``: concur with the interpretation;
- ``2``: discrepancy in interpretation, not ordinarily expected to be made (understandable miss);
- ``3``: discrepancy in interpretation, should be made most of the time;

each discrepancy with ``a`` (unlikely to be clinically significant) or ``b`` (likely to be).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from secondread_reporting.statements import Statement
from secondread_shared.events import CaseAssigned
from secondread_shared.text import refuse_nul

SCHEMA_VERSION = 1


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    REFINED = "refined"
    REVISED = "revised"


class Grade(StrEnum):
    """RADPEER score of a statement the second reader refined or revised."""

    CONCUR = "1"
    MINOR_UNLIKELY_SIGNIFICANT = "2a"
    MINOR_LIKELY_SIGNIFICANT = "2b"
    MAJOR_UNLIKELY_SIGNIFICANT = "3a"
    MAJOR_LIKELY_SIGNIFICANT = "3b"


GRADE_MEANING = {
    Grade.CONCUR: "1: concur with interpretation",
    Grade.MINOR_UNLIKELY_SIGNIFICANT: "2a: discrepancy not ordinarily expected to be made; "
    "unlikely to be clinically significant",
    Grade.MINOR_LIKELY_SIGNIFICANT: "2b: discrepancy not ordinarily expected to be made; "
    "likely to be clinically significant",
    Grade.MAJOR_UNLIKELY_SIGNIFICANT: "3a: discrepancy that should be made most of the time; "
    "unlikely to be clinically significant",
    Grade.MAJOR_LIKELY_SIGNIFICANT: "3b: discrepancy that should be made most of the time; "
    "likely to be clinically significant",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return refuse_nul(value)  # drafts and reports are kept in PostgreSQL (jsonb, text)


class StatementReview(_Strict):
    """The reader's verdict on one numbered statement of the original report."""

    number: int = Field(ge=1)
    verdict: Verdict | None = None
    grade: Grade | None = None
    comment: str = ""


class Assessment(_Strict):
    diagnosis_changed: bool | None = None
    severity_changed: bool | None = None
    staging_changed: bool | None = None
    summary: str = ""


class FollowUpImaging(_Strict):
    type: Literal["follow_up_imaging"]
    modality: str = Field("", description="e.g. CT, MR, PET-CT (required to sign)")
    interval: str = Field("", description="e.g. '3 months' (required to sign)")

    def text(self) -> str:
        return f"Follow-up {self.modality} in {self.interval}"


class Biopsy(_Strict):
    type: Literal["biopsy"]
    target: str = ""

    def text(self) -> str:
        return f"Biopsy of {self.target}" if self.target else "Biopsy"


class Referral(_Strict):
    type: Literal["referral"]
    specialty: str = Field("", description="e.g. thoracic surgery (required to sign)")

    def text(self) -> str:
        return f"Referral to {self.specialty}"


class AdditionalViews(_Strict):
    type: Literal["additional_views"]
    views: str = ""

    def text(self) -> str:
        return f"Additional views: {self.views}" if self.views else "Additional views"


class FutureComparison(_Strict):
    type: Literal["future_comparison"]
    note: str = ""

    def text(self) -> str:
        return "Comparison with a future study" + (f": {self.note}" if self.note else "")


class NoRecommendation(_Strict):
    type: Literal["none"]

    def text(self) -> str:
        return "No further action"


Recommendation = Annotated[
    FollowUpImaging | Biopsy | Referral | AdditionalViews | FutureComparison | NoRecommendation,
    Field(discriminator="type"),
]


class DraftContent(_Strict):
    """What a reader saves, partly filled while they work; signing checks it is complete."""

    findings: str = ""
    statements: list[StatementReview] = Field(default_factory=list)
    assessment: Assessment = Field(default_factory=Assessment)
    recommendations: list[Recommendation] = Field(default_factory=list)


class AddendumContent(_Strict):
    """An addendum: what changes, and why; the same assessment and recommendation types."""

    text: str = Field(min_length=1)
    assessment: Assessment = Field(default_factory=Assessment)
    recommendations: list[Recommendation] = Field(default_factory=list)


def missing(draft: DraftContent, original: list[Statement]) -> list[str]:
    """What the draft still lacks before it can be signed (empty when complete)."""
    gaps: list[str] = []
    if not draft.findings.strip():
        gaps.append("findings")
    reviews = {r.number: r for r in draft.statements}
    known = {s.number for s in original}
    for extra in sorted(set(reviews) - known):
        gaps.append(f"statement {extra} does not exist in the original report")
    for s in original:
        r = reviews.get(s.number)
        if r is None or r.verdict is None:
            gaps.append(f"statement {s.number} verdict (confirmed, refined or revised)")
        elif r.verdict != Verdict.CONFIRMED and r.grade is None:
            gaps.append(f"statement {s.number} RADPEER grade ({r.verdict.value})")
        elif r.verdict == Verdict.CONFIRMED and r.grade not in (None, Grade.CONCUR):
            gaps.append(f"statement {s.number}: a confirmed statement is graded 1 or not at all")
    gaps += _assessment_gaps(draft.assessment)
    if not draft.recommendations:
        gaps.append("recommendations (at least one; 'none' when there is nothing to do)")
    gaps += _recommendation_gaps(draft.recommendations)
    return gaps


REQUIRED_RECOMMENDATION_FIELDS = {
    "follow_up_imaging": ("modality", "interval"),
    "referral": ("specialty",),
}
"""The fields a recommendation of each type needs before it can be signed. A draft may hold
them empty while the reader types (the draft is saved as they go)."""


def _recommendation_gaps(recs: list[Any]) -> list[str]:
    gaps = []
    for n, rec in enumerate(recs, start=1):
        for name in REQUIRED_RECOMMENDATION_FIELDS.get(rec.type, ()):
            if not str(getattr(rec, name)).strip():
                gaps.append(f"recommendation {n} ({rec.type}) {name}")
    return gaps


def _assessment_gaps(a: Assessment) -> list[str]:
    gaps = [
        f"assessment.{name} (yes or no)"
        for name in ("diagnosis_changed", "severity_changed", "staging_changed")
        if getattr(a, name) is None
    ]
    if not a.summary.strip():
        gaps.append("assessment.summary")
    return gaps


def addendum_missing(content: AddendumContent) -> list[str]:
    return _assessment_gaps(content.assessment) + _recommendation_gaps(content.recommendations)


def signer_block(assigned: CaseAssigned, key_fingerprint: str = "") -> dict[str, Any]:
    """The signer as the roster describes them for this case (through ``case.assigned``)."""
    return {
        "radiologist_id": assigned.radiologist_id,
        "display_name": assigned.radiologist_name or assigned.radiologist_id,
        "credentials": assigned.radiologist_credentials,
        "certifications": list(assigned.radiologist_certifications),
        "licence": assigned.radiologist_licence,
        "key_fingerprint": key_fingerprint,
    }


def _assessment_json(a: Assessment) -> dict[str, Any]:
    changes = [
        name
        for name, flag in (
            ("diagnosis", a.diagnosis_changed),
            ("severity", a.severity_changed),
            ("staging", a.staging_changed),
        )
        if flag
    ]
    return {**a.model_dump(mode="json"), "changes": changes}


def _recommendations_json(recs: list[Any]) -> list[dict[str, Any]]:
    return [{**r.model_dump(mode="json"), "text": r.text()} for r in recs]


def report_document(
    *,
    report_id: str,
    assigned: CaseAssigned,
    original: list[Statement],
    draft: DraftContent,
    draft_version: int,
    signed_at: datetime,
    key_id: str,
    key_fingerprint: str = "",
) -> dict[str, Any]:
    """The document that is signed: everything a reader of the report needs, and nothing that
    identifies the patient (the pseudonym only)."""
    reviews = {r.number: r for r in draft.statements}
    signer = signer_block(assigned, key_fingerprint)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "report",
        "report_id": report_id,
        "case_id": assigned.case_id,
        "amends": None,
        "patient_pseudonym": assigned.patient_pseudonym,
        "study_instance_uids": list(assigned.study_instance_uids),
        "clinical_question": assigned.clinical_question,
        "findings": draft.findings,
        "statements": [
            {
                "number": s.number,
                "section": s.section,
                "statement": s.text,
                "verdict": reviews[s.number].verdict,
                "grade": reviews[s.number].grade,
                "comment": reviews[s.number].comment,
            }
            for s in original
        ],
        "assessment": _assessment_json(draft.assessment),
        "recommendations": _recommendations_json(draft.recommendations),
        "signer": signer,
        "radiologist_id": signer["radiologist_id"],
        "credentials": signer["credentials"],
        "draft_version": draft_version,
        "signed_at": signed_at.isoformat(),
        "algorithm": "Ed25519",
        "key_id": key_id,
    }


def addendum_document(
    *,
    report_id: str,
    original: dict[str, Any],
    original_sha256: str,
    assigned: CaseAssigned,
    content: AddendumContent,
    signed_at: datetime,
    key_id: str,
    key_fingerprint: str = "",
) -> dict[str, Any]:
    signer = signer_block(assigned, key_fingerprint)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "addendum",
        "report_id": report_id,
        "case_id": original["case_id"],
        "amends": {"report_id": original["report_id"], "sha256": original_sha256},
        "patient_pseudonym": original["patient_pseudonym"],
        "study_instance_uids": original["study_instance_uids"],
        "clinical_question": original.get("clinical_question", ""),
        "findings": content.text,
        "statements": [],
        "assessment": _assessment_json(content.assessment),
        "recommendations": _recommendations_json(content.recommendations),
        "signer": signer,
        "radiologist_id": signer["radiologist_id"],
        "credentials": signer["credentials"],
        "signed_at": signed_at.isoformat(),
        "algorithm": "Ed25519",
        "key_id": key_id,
    }
