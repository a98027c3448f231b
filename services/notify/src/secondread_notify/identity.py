"""The patient's identity for the delivery copy, read from the case's own DICOM header (PHI
zone; every read is audited by the caller). Pure: bytes in, identity out."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pydicom
from pydicom.errors import InvalidDicomError


@dataclass(frozen=True)
class PatientIdentity:
    """Who the report is about, as the hospital knows them. Never logged."""

    name: str
    """Written form ("Given Family"), from the DICOM PN ``Family^Given^Middle``."""
    dicom_name: str
    birth_date: str
    """DICOM DA as sent (``YYYYMMDD``), or empty."""
    patient_id: str
    issuer: str
    accession_number: str
    study_date: str
    study_instance_uid: str
    """The original Study Instance UID (the hospital's, not the archive's pseudonymous one)."""
    sex: str = ""

    @property
    def initials(self) -> str:
        """``A. Q.`` for "Alonso Quixote": what an email body may show by default."""
        parts = [p for p in self.name.replace("-", " ").split() if p]
        return " ".join(f"{p[0].upper()}." for p in parts) or "the patient"

    @property
    def birth_date_written(self) -> str:
        return _written_date(self.birth_date)

    @property
    def study_date_written(self) -> str:
        return _written_date(self.study_date)


def _written_date(d: str) -> str:
    """DICOM DA ``YYYYMMDD`` as ``YYYY-MM-DD`` (anything else as it is)."""
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def written_name(pn: str) -> str:
    """A DICOM PN (``Family^Given^Middle^Prefix^Suffix``) as it is written."""
    parts = (pn.split("=")[0].split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = (p.strip() for p in parts)
    return " ".join(p for p in (prefix, given, middle, family, suffix) if p)


def read_identity(header: bytes, default_issuer: str = "") -> PatientIdentity:
    """The identity in one instance of the case (DICOM Part 10 bytes; the pixel data need not
    be there).

    Raises
    ------
    ValueError
        When ``header`` is not a DICOM instance.
    """
    try:
        ds = pydicom.dcmread(io.BytesIO(header), stop_before_pixels=True)
    except (InvalidDicomError, EOFError, OSError) as exc:
        raise ValueError(f"not a DICOM instance: {type(exc).__name__}") from exc
    pn = str(ds.get("PatientName", "") or "")
    return PatientIdentity(
        name=written_name(pn),
        dicom_name=pn,
        birth_date=str(ds.get("PatientBirthDate", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        issuer=str(ds.get("IssuerOfPatientID", "") or "") or default_issuer,
        accession_number=str(ds.get("AccessionNumber", "") or ""),
        study_date=str(ds.get("StudyDate", "") or ""),
        study_instance_uid=str(ds.get("StudyInstanceUID", "") or ""),
        sex=str(ds.get("PatientSex", "") or ""),
    )
