"""The :class:`~secondread_reporting.ports.Outputs` adapter: a signed document's outputs in the
reports bucket and the archive.

Every name derives from the report id, so a retry of a half-finished sign overwrites the same
objects instead of adding new ones; the archive's UIDs derive from the report id and the document's
hash, and an attempt that is replaced (its draft changed before it finished) has its archived
instances removed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from secondread_reporting.outputs import diagnostic_report, encapsulated_pdf, render_pdf
from secondread_reporting.ports import Attempt, Written
from secondread_reporting.signing import sha256_hex, signature_file
from secondread_shared.orthanc import OrthancClient
from secondread_shared.sr import comprehensive_sr
from secondread_shared.storage import ObjectStore


def object_prefix(case_id: str, report_id: str) -> str:
    return f"reports/{case_id}/{report_id}"


@dataclass
class ArchivePublisher:
    store: ObjectStore
    orthanc: OrthancClient
    bucket: str
    public_base_url: str

    def verification_url(self, report_id: str) -> str:
        return f"{self.public_base_url.rstrip('/')}/v1/reports/{report_id}/verify"

    async def write(self, attempt: Attempt, document: dict[str, Any], fingerprint: str) -> Written:
        prefix = object_prefix(attempt.case_id, attempt.report_id)
        put = self.store.put
        report = await put(
            self.bucket, f"{prefix}.json", attempt.canonical, content_type="application/json"
        )
        sig = await put(
            self.bucket,
            f"{prefix}.sig.json",
            json.dumps(
                signature_file(
                    attempt.report_id, attempt.key_id, attempt.signature, attempt.canonical
                ),
                indent=2,
            ).encode(),
            content_type="application/json",
        )
        evidence = await self._evidence(document)
        pdf_bytes, dicoms, fhir_bytes = await asyncio.to_thread(
            self._render, attempt, document, fingerprint, evidence
        )
        pdf = await put(self.bucket, f"{prefix}.pdf", pdf_bytes, content_type="application/pdf")
        fhir = await put(
            self.bucket, f"{prefix}.fhir.json", fhir_bytes, content_type="application/fhir+json"
        )
        archive_ids = [(await self.orthanc.store_instance(d)).instance_id for d in dicoms]
        return Written(report=report, signature=sig, pdf=pdf, fhir=fhir, archive_ids=archive_ids)

    async def _evidence(self, document: dict[str, Any]) -> bytes | None:
        """An image of the case's first study in the archive (the SR's evidence), if any."""
        uids = document.get("study_instance_uids") or []
        if not uids:
            return None
        studies = await self.orthanc.find_studies({"StudyInstanceUID": uids[0]})
        for study in studies:
            for series in await self.orthanc.study_series(str(study["ID"])):
                if series.get("MainDicomTags", {}).get("Modality") in ("DOC", "SR"):
                    continue
                if series.get("Instances"):
                    return await self.orthanc.instance_file(str(series["Instances"][0]))
        return None

    def _render(
        self, attempt: Attempt, document: dict[str, Any], fingerprint: str, evidence: bytes | None
    ) -> tuple[bytes, list[bytes], bytes]:
        pdf = render_pdf(
            document,
            signature=attempt.signature,
            key_id=attempt.key_id,
            fingerprint=fingerprint,
            verification_url=self.verification_url(attempt.report_id),
        )
        entropy = f"{attempt.report_id}:{sha256_hex(attempt.canonical)}"
        dicoms = []
        uids = document.get("study_instance_uids") or []
        if uids:
            dicoms.append(
                encapsulated_pdf(
                    pdf, report=document, study_instance_uid=uids[0], uid_root_entropy=entropy
                )
            )
        if evidence is not None:
            dicoms.append(comprehensive_sr(document, evidence, uid_entropy=entropy))
        fhir = json.dumps(diagnostic_report(document, pdf)).encode()
        return pdf, dicoms, fhir

    async def remove_archived(self, archive_ids: list[str]) -> None:
        for instance_id in archive_ids:
            await self.orthanc.delete_instance(instance_id)
