"""The de-identification engine: one DICOM instance in, one de-identified instance out.

Implements a subset of DICOM PS3.15 Annex E, "Basic Application Level Confidentiality Profile",
with the options Retain Longitudinal Temporal Information with Modified Dates and Retain Patient
Characteristics. (The complete, table-driven profile is issue 4; this is the walking skeleton.)

- PatientID -> keyed HMAC of issuer and id; PatientName derived from it;
- every non-standard UID -> keyed remap (consistent across studies and replicas);
- person names, addresses, institution and free-text identifiers -> removed;
- dates -> shifted by the per-patient offset;
- private tags -> removed (Retain Safe Private is off);
- ``BurnedInAnnotation`` YES -> quarantined, never passed on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, timedelta

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from secondread_deidentify.pseudonyms import (
    date_shift_days,
    patient_pseudonym,
    pseudonym_name,
    remap_uid,
)

# Attributes removed outright (X in PS3.15 Table E.1-1), a subset for the skeleton.
REMOVE = frozenset(
    {
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientMotherBirthName",
        "MilitaryRank",
        "EthnicGroup",
        "PatientComments",
        "AdditionalPatientHistory",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "StationName",
        "RequestingPhysician",
        "PerformingPhysicianName",
        "NameOfPhysiciansReadingStudy",
        "OperatorsName",
        "PhysiciansOfRecord",
        "DeviceSerialNumber",
        "ImageComments",
        "RequestAttributesSequence",
        "IssuerOfPatientID",
        "MedicalRecordLocator",
        "CountryOfResidence",
        "RegionOfResidence",
        "PatientBirthName",
        "PatientInsurancePlanCodeSequence",
    }
)
# Attributes emptied (Z): keep the element, drop the value.
EMPTY = frozenset({"ReferringPhysicianName", "StudyID", "AccessionNumber"})
# Instance UIDs that must not be remapped even though they are not in the UID dictionary.
KEEP_UIDS = frozenset({"SOPClassUID", "ReferencedSOPClassUID", "TransferSyntaxUID"})


@dataclass(frozen=True)
class Identity:
    """What the instance said about the patient: kept only in the vault, never logged."""

    patient_id: str
    issuer: str
    patient_name: str
    birth_date: str
    accession_number: str
    other: tuple[str, ...] = ()

    def identifiers(self) -> list[str]:
        """Every non-empty identifying string, for free-text scrubbing."""
        values = [
            self.patient_id,
            self.patient_name,
            self.accession_number,
            self.birth_date,
            *self.other,
        ]
        return [v for v in values if v and v.strip()]


@dataclass
class DeidResult:
    data: bytes
    pseudonym: str
    identity: Identity
    study_instance_uid: str
    sop_instance_uid: str
    modality: str
    body_part: str
    date_shift_days: int
    quarantine_reason: str | None = None
    actions: list[str] = field(default_factory=list)


def _is_standard(uid: str) -> bool:
    """A UID registered in PS3.6 Annex A (transfer syntaxes, SOP classes, ...): kept as is."""
    return UID(uid).name != uid


def _shift_da(value: str, days: int) -> str:
    value = value.strip()
    if len(value) < 8 or not value[:8].isdigit():
        return ""
    try:
        d = date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return ""
    return (d + timedelta(days=days)).strftime("%Y%m%d")


def _walk(ds: Dataset, key: bytes, shift: int) -> None:
    for elem in list(ds):
        kw = elem.keyword
        if elem.VR == "SQ":
            if kw in REMOVE:
                del ds[elem.tag]
                continue
            for item in elem.value:
                _walk(item, key, shift)
            continue
        if kw in REMOVE:
            del ds[elem.tag]
        elif kw in EMPTY:
            elem.value = ""
        elif elem.VR == "PN" and kw != "PatientName":
            elem.value = ""
        elif elem.VR == "UI" and kw not in KEEP_UIDS and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            mapped = [v if _is_standard(str(v)) else remap_uid(key, str(v)) for v in values]
            elem.value = mapped if elem.VM > 1 else mapped[0]
        elif elem.VR == "DA" and elem.value:
            elem.value = _shift_da(str(elem.value), shift)
        elif elem.VR == "DT" and elem.value:
            raw = str(elem.value)
            elem.value = _shift_da(raw[:8], shift) + raw[8:]


def deidentify(data: bytes, key: bytes) -> DeidResult:
    """De-identify one DICOM Part 10 instance.

    Parameters
    ----------
    data
        The original file bytes.
    key
        The pseudonym key (bytes); never stored with the output.
    """
    ds = pydicom.dcmread(io.BytesIO(data))
    identity = Identity(
        patient_id=str(ds.get("PatientID", "")),
        issuer=str(ds.get("IssuerOfPatientID", "")),
        patient_name=str(ds.get("PatientName", "")),
        birth_date=str(ds.get("PatientBirthDate", "")),
        accession_number=str(ds.get("AccessionNumber", "")),
    )
    pseudonym = patient_pseudonym(key, identity.issuer, identity.patient_id)
    shift = date_shift_days(key, pseudonym)
    reason = None
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        reason = "BurnedInAnnotation is YES"
    ds.remove_private_tags()
    _walk(ds, key, shift)
    ds.PatientID = pseudonym
    ds.PatientName = pseudonym_name(pseudonym)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "secondread PS3.15 Basic Profile subset; RetainLongModifDates"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return DeidResult(
        data=out.getvalue(),
        pseudonym=pseudonym,
        identity=identity,
        study_instance_uid=str(ds.StudyInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        modality=str(ds.get("Modality", "")),
        body_part=str(ds.get("BodyPartExamined", "")),
        date_shift_days=shift,
        quarantine_reason=reason,
    )
