"""The DICOM channel: the second opinion, re-identified, sent by C-STORE to the hospital's PACS.

Two objects, both in the hospital's own study (the original Study Instance UID and the patient
as the hospital knows them), each in a new series:

- the delivery copy (cover page and signed PDF) as an Encapsulated PDF (PS3.3 A.45.1), series
  9901 "Second opinion";
- the signed report as a TID 2000 Comprehensive SR (:mod:`secondread_shared.sr`), series 9902
  "Second opinion (structured)", its evidence one of the case's original instances.

Their series and instance UIDs are derived from the report id, so a resend of the same report
version stores the same instances (a PACS keeps them once) and the second opinion appears beside
the original study.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from typing import Any, Literal

import pydicom
from pydantic import BaseModel, Field
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from secondread_notify.channels.base import Message, Outcome, SendFailed
from secondread_notify.identity import PatientIdentity
from secondread_shared.dicom import new_instance
from secondread_shared.sr import comprehensive_sr

ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
COMPREHENSIVE_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.33"
SR_SERIES_NUMBER = 9902
OK_STATUSES = frozenset({0x0000, 0xB000, 0xB007, 0xB006})
"""Success, and the warnings (coercion, elements discarded, dataset mismatch): stored."""
UID_PREFIX = "1.2.826.0.1.3680043.8.498."
"""pydicom's UID root: ``generate_uid(prefix, entropy_srcs)`` under it is deterministic."""


class DicomChannel(BaseModel):
    """Deliver by C-STORE to the hospital's PACS."""

    kind: Literal["dicom"] = "dicom"
    ae_title: str = Field(min_length=1, max_length=16)
    host: str
    port: int = Field(ge=1, le=65535)
    calling_ae_title: str = Field(default="SECONDREAD", min_length=1, max_length=16)
    timeout_s: float = 30.0


def delivery_uids(report_id: str) -> tuple[str, str]:
    """The series and instance UIDs of a report version's delivery object (deterministic)."""
    series = generate_uid(prefix=UID_PREFIX, entropy_srcs=["secondread-delivery", report_id, "s"])
    sop = generate_uid(prefix=UID_PREFIX, entropy_srcs=["secondread-delivery", report_id, "i"])
    return str(series), str(sop)


def encapsulated_pdf(
    pdf: bytes, identity: PatientIdentity, *, report_id: str, title: str, signed_at: datetime
) -> Dataset:
    """The delivery copy as an Encapsulated PDF instance in the hospital's study."""
    series_uid, sop_uid = delivery_uids(report_id)
    ds = new_instance(ENCAPSULATED_PDF_STORAGE, sop_uid)
    ds.StudyInstanceUID = identity.study_instance_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = identity.dicom_name
    ds.PatientID = identity.patient_id
    if identity.issuer:
        ds.IssuerOfPatientID = identity.issuer
    ds.PatientBirthDate = identity.birth_date
    ds.PatientSex = identity.sex
    ds.AccessionNumber = identity.accession_number
    ds.StudyDate = identity.study_date
    ds.StudyTime = ""
    ds.StudyID = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = "DOC"
    ds.SeriesNumber = 9901
    ds.SeriesDescription = "Second opinion"
    ds.InstanceNumber = 1
    ds.ConversionType = "WSD"
    ds.Manufacturer = "secondread"
    stamp = signed_at.astimezone(UTC)
    ds.ContentDate = stamp.strftime("%Y%m%d")
    ds.ContentTime = stamp.strftime("%H%M%S")
    ds.AcquisitionDateTime = stamp.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the PDF shows the identity
    ds.DocumentTitle = title[:64]
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\x00" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    return ds


def delivery_sr(
    report: dict[str, Any], evidence: bytes, identity: PatientIdentity, *, report_id: str
) -> Dataset:
    """The signed report as a Comprehensive SR in the hospital's study: ``evidence`` is one of
    the case's original instances (its patient and study); UIDs deterministic per report id."""
    data = comprehensive_sr(
        report,
        evidence,
        uid_entropy=f"secondread-delivery:{report_id}",
        series_number=SR_SERIES_NUMBER,
        series_description="Second opinion (structured)",
    )
    ds = pydicom.dcmread(io.BytesIO(data))
    if identity.issuer:
        ds.IssuerOfPatientID = identity.issuer  # as on the Encapsulated PDF
    return ds


class DicomSender:
    def __init__(self, channel: DicomChannel) -> None:
        self.channel = channel

    async def send(self, message: Message) -> Outcome:
        if message.identity is None or message.delivery_pdf is None or message.evidence is None:
            raise SendFailed("no identity or delivery copy for the DICOM channel", permanent=True)
        pdf = encapsulated_pdf(
            message.delivery_pdf,
            message.identity,
            report_id=message.event.report_id,
            title="Second opinion report",
            signed_at=message.event.signed_at,
        )
        try:
            sr = await asyncio.to_thread(
                delivery_sr,
                message.report,
                message.evidence,
                message.identity,
                report_id=message.event.report_id,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SendFailed(f"the SR cannot be built: {exc}", permanent=True) from exc
        statuses = await asyncio.to_thread(self._store, [pdf, sr])
        for name, status in zip(("Encapsulated PDF", "SR"), statuses, strict=True):
            if status not in OK_STATUSES:
                # A/C statuses (PS3.4 B.2.3): refused, or cannot understand: not worth retrying
                raise SendFailed(
                    f"C-STORE of the {name}: status 0x{status:04X}", permanent=status >= 0xA000
                )
        return Outcome(
            detail="C-STORE Encapsulated PDF and SR: " + ", ".join(f"0x{s:04X}" for s in statuses)
        )

    def _store(self, datasets: list[Dataset]) -> list[int]:
        ae = AE(ae_title=self.channel.calling_ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.channel.timeout_s
        ae.add_requested_context(ENCAPSULATED_PDF_STORAGE, ExplicitVRLittleEndian)
        ae.add_requested_context(COMPREHENSIVE_SR_STORAGE, ExplicitVRLittleEndian)
        assoc = ae.associate(self.channel.host, self.channel.port, ae_title=self.channel.ae_title)
        if not assoc.is_established:
            raise SendFailed(f"association with {self.channel.ae_title} not established")
        statuses = []
        try:
            for ds in datasets:
                status = assoc.send_c_store(ds)
                if not status or "Status" not in status:
                    raise SendFailed("no C-STORE response (timeout or aborted association)")
                statuses.append(int(status.Status))
        finally:
            assoc.release()
        return statuses
