"""The reading archive (Orthanc) as routing sees it: a patient's studies, summarised."""

from __future__ import annotations

from typing import Any

from secondread_routing.priors import StudySummary, parse_da
from secondread_shared.orthanc import OrthancClient


class ArchiveStudies:
    """Every archived study of a pseudonymous patient (PatientID is the pseudonym)."""

    def __init__(self, orthanc: OrthancClient) -> None:
        self.orthanc = orthanc

    async def studies_of(self, patient_pseudonym: str) -> list[StudySummary]:
        found = await self.orthanc.find_studies({"PatientID": patient_pseudonym})
        return [await self._summary(study) for study in found]

    async def _summary(self, study: dict[str, Any]) -> StudySummary:
        tags = study.get("MainDicomTags", {})
        series = await self.orthanc.study_series(study["ID"])
        series_tags = [s.get("MainDicomTags", {}) for s in series]
        return StudySummary(
            orthanc_id=study["ID"],
            study_instance_uid=tags.get("StudyInstanceUID", ""),
            study_date=parse_da(tags.get("StudyDate", "")),
            description=tags.get("StudyDescription", ""),
            modalities=frozenset(t["Modality"] for t in series_tags if t.get("Modality")),
            body_parts=frozenset(
                t["BodyPartExamined"].upper() for t in series_tags if t.get("BodyPartExamined")
            ),
        )
