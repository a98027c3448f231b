"""The case form and DICOM object validation: pure logic, no I/O frameworks.

Validation follows DICOM PS3.10 (file format): a 128-byte preamble, ``DICM``, file meta
information (group 0002) whose Media Storage SOP Class/Instance UIDs agree with the dataset.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Literal

import pydicom
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

from secondread_ingest.errors import InputRejected, ReportExtractionError
from secondread_ingest.reports import extract_report_text, is_report_class
from secondread_shared.events import Contact, Urgency

_DEFER = 64 * 1024
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = Tag(0x7FE0, 0x0010)
_UID = r"^[0-9]+(\.[0-9]+)*$"


class IntakeForm(BaseModel):
    """The ``intake`` part of ``POST /v1/cases``."""

    model_config = ConfigDict(extra="forbid")

    clinical_question: str = Field(min_length=1, max_length=20_000)
    original_report: str = Field(default="", max_length=200_000)
    urgency: Urgency = Urgency.ROUTINE
    referring_physician: Contact
    patient_email: EmailStr | None = None
    jurisdiction: str = Field(default="US", min_length=2, max_length=16)
    consent: bool
    """The patient's consent to processing; a case without it is refused."""
    patient_delivery_consent: bool = False
    """The patient's consent to receive the report at ``patient_email`` (both are needed)."""
    delivery_channels: list[Literal["email", "webhook", "fhir", "dicom"]] | None = None
    """The hospital's channels to deliver this case over (all of them when not given)."""
    study_instance_uids: list[str] = Field(default_factory=list, max_length=100)
    """Studies that will come by C-STORE or STOW-RS (a case opened with the intake alone)."""
    expected_instances: int | None = Field(default=None, ge=1)
    """Declared instance count: the case is complete as soon as this many have arrived."""
    fetch_priors: bool = False
    """Allow ingest to query the hospital's PACS for this patient's prior studies."""

    @model_validator(mode="after")
    def _patient_delivery(self) -> IntakeForm:
        if self.patient_delivery_consent and self.patient_email is None:
            raise ValueError("patient_delivery_consent needs patient_email")
        return self

    @field_validator("study_instance_uids")
    @classmethod
    def _uids(cls, value: list[str]) -> list[str]:
        for uid in value:
            if len(uid) > 64 or not re.match(_UID, uid):
                raise ValueError("not a DICOM UID (PS3.5 9.1)")
        return value


@dataclass(frozen=True)
class InstanceInfo:
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str = ""
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    report_text: str | None = None
    """Text of a DICOM SR or encapsulated PDF report, when the instance is one."""
    report_error: str | None = None
    """Why a report instance's text could not be extracted."""


def inspect_instance(data: bytes, name: str) -> InstanceInfo:
    """Parse one DICOM Part 10 file and return its identifying UIDs.

    Raises
    ------
    InputRejected
        ``not_dicom``, ``truncated``, ``missing_uid`` or ``meta_mismatch``, naming ``name``.
    """
    try:
        # Values above _DEFER bytes (pixel data) are not copied; their bounds are checked below.
        ds = pydicom.dcmread(io.BytesIO(data), force=False, defer_size=_DEFER)
    except InvalidDicomError as exc:
        raise InputRejected("not_dicom", f"{name}: not a DICOM Part 10 file") from exc
    except (EOFError, OSError, ValueError, struct.error) as exc:
        raise InputRejected("truncated", f"{name}: truncated or unreadable DICOM") from exc
    try:
        pixel_bytes = -1
        # The reader has parsed every element header; values are checked against the bytes we
        # have, not decoded (decoding every value cost more than the rest of a C-STORE).
        for raw in ds.elements():
            if not isinstance(raw, RawDataElement):
                continue
            if raw.value is None and raw.length:
                # Deferred: the value must lie inside the bytes we have.
                if raw.value_tell + raw.length > len(data):
                    raise InputRejected("truncated", f"{name}: truncated or unreadable DICOM")
                length = raw.length
            elif raw.length != _UNDEFINED and len(raw.value or b"") < raw.length:
                raise InputRejected("truncated", f"{name}: truncated or unreadable DICOM")
            else:
                length = len(raw.value or b"")
            if raw.tag == _PIXEL_DATA:
                pixel_bytes = length
        short = pixel_bytes >= 0 and pixel_bytes < _expected_pixel_bytes(ds)
    except InputRejected:
        raise
    except Exception as exc:
        raise InputRejected("truncated", f"{name}: truncated or unreadable DICOM") from exc
    if short:
        raise InputRejected("truncated", f"{name}: pixel data shorter than its image size")
    if is_report_class(str(ds.get("SOPClassUID", ""))):
        ds = pydicom.dcmread(io.BytesIO(data), force=False)  # reports are small: read whole
    missing = [
        kw
        for kw in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID")
        if not str(ds.get(kw, "")).strip()
    ]
    if missing:
        raise InputRejected("missing_uid", f"{name}: missing {', '.join(missing)}")
    meta = ds.file_meta
    for meta_kw, ds_kw in (
        ("MediaStorageSOPInstanceUID", "SOPInstanceUID"),
        ("MediaStorageSOPClassUID", "SOPClassUID"),
    ):
        if meta_kw in meta and str(meta[meta_kw].value) != str(ds[ds_kw].value):
            raise InputRejected(
                "meta_mismatch", f"{name}: file meta {meta_kw} disagrees with {ds_kw}"
            )
    if "TransferSyntaxUID" not in meta:
        raise InputRejected("meta_mismatch", f"{name}: file meta has no TransferSyntaxUID")
    report_text: str | None = None
    report_error: str | None = None
    try:
        report_text = extract_report_text(ds)
    except ReportExtractionError as exc:
        report_error = str(exc)
    return InstanceInfo(
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax_uid=str(meta.TransferSyntaxUID),
        patient_id=str(ds.get("PatientID", "") or ""),
        issuer_of_patient_id=str(ds.get("IssuerOfPatientID", "") or ""),
        report_text=report_text,
        report_error=report_error,
    )


def _expected_pixel_bytes(ds: pydicom.Dataset) -> int:
    """Bytes of native (uncompressed) pixel data the header promises; 0 when encapsulated."""
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        return 0
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    bits = int(ds.get("BitsAllocated", 0))
    pixels = int(ds.get("Rows", 0)) * int(ds.get("Columns", 0)) * int(ds.get("SamplesPerPixel", 1))
    return (pixels * frames * bits + 7) // 8


def iter_zip(
    fileobj: IO[bytes], name: str, *, max_members: int, max_ratio: float, max_total: int
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, bytes)`` of each file in a zip, refusing bombs and traversal.

    Directories and a ``DICOMDIR`` index are skipped; the index is not an instance.
    """
    try:
        zf = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile as exc:
        raise InputRejected("bad_zip", f"{name}: not a readable zip archive") from exc
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > max_members:
            raise InputRejected("zip_too_many", f"{name}: more than {max_members} members")
        total = 0
        for info in infos:
            parts = info.filename.replace("\\", "/").split("/")
            if info.filename.startswith("/") or ".." in parts or ":" in parts[0]:
                raise InputRejected(
                    "zip_traversal", f"{name}: unsafe member path {info.filename!r}"
                )
            total += info.file_size
            if total > max_total:
                raise InputRejected(
                    "too_large", f"{name}: unpacks beyond {max_total} bytes", status=413
                )
            if info.compress_size and info.file_size / info.compress_size > max_ratio:
                raise InputRejected(
                    "zip_bomb", f"{name}: member {info.filename!r} compression ratio too high"
                )
            if parts[-1].upper() == "DICOMDIR":
                continue
            with zf.open(info) as member:
                data = member.read(info.file_size + 1)
            if len(data) != info.file_size:
                raise InputRejected(
                    "zip_bomb", f"{name}: member {info.filename!r} larger than declared"
                )
            yield info.filename, data
