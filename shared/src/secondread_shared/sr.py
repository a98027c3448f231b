"""The signed report as a DICOM Comprehensive SR following TID 2000, "Basic Diagnostic Imaging
Report" (PS3.16 TID 2000), built with highdicom.

Content tree (PS3.16 TID 2000, TID 1001 and the section headings of CID 7001):

- CONTAINER (18748-4, LN, "Diagnostic imaging report"), template 2000
  - HAS OBS CONTEXT: the signing reader as the person observer (TID 1001/1003)
  - CONTAINS CONTAINER (121070, DCM, "Findings"): TEXT (121071, DCM, "Finding"): the reader's
    findings, then one per original statement with its verdict, RADPEER grade and comment
  - CONTAINS CONTAINER (121072, DCM, "Impressions"): TEXT (121073, DCM, "Impression"): the
    assessment line and the diagnosis/severity/staging answers
  - CONTAINS CONTAINER (121074, DCM, "Recommendations"): TEXT (121075, DCM, "Recommendation")

Patient and study attributes come from an instance of the study the SR is filed in, the
evidence, so the SR is a new series of that study: reporting files it in the case's
de-identified study in the archive; notify files a re-identified one in the hospital's own study
(the evidence is then one of the case's original instances). UIDs derive from ``uid_entropy``, so
the same report version always gives the same instance.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import highdicom as hd
import pydicom
from highdicom.sr import (
    CodedConcept,
    ContainerContentItem,
    ObservationContext,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    RelationshipTypeValues,
    TextContentItem,
)
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

REPORT_TITLE = CodedConcept("18748-4", "LN", "Diagnostic imaging report")
FINDINGS = CodedConcept("121070", "DCM", "Findings")
FINDING = CodedConcept("121071", "DCM", "Finding")
IMPRESSIONS = CodedConcept("121072", "DCM", "Impressions")
IMPRESSION = CodedConcept("121073", "DCM", "Impression")
RECOMMENDATIONS = CodedConcept("121074", "DCM", "Recommendations")
RECOMMENDATION = CodedConcept("121075", "DCM", "Recommendation")
SR_SERIES_NUMBER = 9002
"""The Encapsulated PDF is series 9001 of the same study."""


def _section(name: CodedConcept, item: CodedConcept, texts: list[str]) -> ContainerContentItem:
    container = ContainerContentItem(name=name, relationship_type=RelationshipTypeValues.CONTAINS)
    container.ContentSequence = Sequence(
        [
            TextContentItem(name=item, value=t[:1024] or "-", relationship_type="CONTAINS")
            for t in texts
        ]
    )
    return container


def _yes_no(flag: object) -> str:
    return "yes" if flag else "no"


def comprehensive_sr(
    report: dict[str, Any],
    evidence: bytes,
    *,
    uid_entropy: str,
    series_number: int = SR_SERIES_NUMBER,
    series_description: str = "Second-opinion report (structured)",
) -> bytes:
    """The report as a TID 2000 Comprehensive SR in the evidence instance's study (Part 10)."""
    source = pydicom.dcmread(io.BytesIO(evidence), stop_before_pixels=True)
    _fill_type2(source)
    signer = report.get("signer") or {}
    # a display name, not PN components: one component, the trailing caret says so (PS3.5 6.2)
    name = str(signer.get("display_name") or report["radiologist_id"]).replace("^", " ") + "^"
    observer = ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=PersonObserverIdentifyingAttributes(name=name),
    )
    root = ContainerContentItem(name=REPORT_TITLE, template_id="2000")
    a = report["assessment"]
    findings = [report["findings"]] + [
        f"Statement {s['number']} ({s['verdict']}"
        + (f", RADPEER {s['grade']}" if s.get("grade") else "")
        + f"): {s['statement']}"
        + (f" Comment: {s['comment']}" if s.get("comment") else "")
        for s in report.get("statements") or []
    ]
    impressions = [
        str(a["summary"]),
        f"Diagnosis changed: {_yes_no(a.get('diagnosis_changed'))}; severity changed: "
        f"{_yes_no(a.get('severity_changed'))}; staging changed: "
        f"{_yes_no(a.get('staging_changed'))}",
    ]
    recommendations = [str(r["text"]) for r in report.get("recommendations") or []] or ["None"]
    root.ContentSequence = Sequence(
        [
            *ObservationContext(observer_person_context=observer),
            _section(FINDINGS, FINDING, findings),
            _section(IMPRESSIONS, IMPRESSION, impressions),
            _section(RECOMMENDATIONS, RECOMMENDATION, recommendations),
        ]
    )
    signed = datetime.fromisoformat(report["signed_at"])
    sr = hd.sr.ComprehensiveSR(
        evidence=[source],
        content=root,
        series_instance_uid=generate_uid(entropy_srcs=[uid_entropy, "sr-series"]),
        series_number=series_number,
        sop_instance_uid=generate_uid(entropy_srcs=[uid_entropy, "sr-instance"]),
        instance_number=1,
        manufacturer="secondread",
        is_complete=True,
        is_final=True,
        is_verified=True,
        verifying_observer_name=name,
        verifying_organization="secondread",
        record_evidence=True,
        series_description=series_description,
        content_date=signed.date(),
        content_time=signed.time().replace(tzinfo=None),
    )
    sr.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: the report's text is any Unicode
    if source.get("IssuerOfPatientID"):
        sr.IssuerOfPatientID = source.IssuerOfPatientID
    out = io.BytesIO()
    sr.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _fill_type2(source: Dataset) -> None:
    """Type 2 patient and study attributes that highdicom copies, present (empty) when the
    de-identified evidence has dropped them."""
    for keyword in ("PatientName", "PatientBirthDate", "PatientSex", "ReferringPhysicianName",
                    "StudyID", "AccessionNumber", "StudyDate", "StudyTime"):  # fmt: skip
        if keyword not in source:
            setattr(source, keyword, "")
