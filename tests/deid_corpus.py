"""A synthetic de-identification corpus with PHI planted everywhere, generated at test time.

Every value is invented. :func:`planted_instance` builds on :mod:`tests.synthetic` and adds
identifiers in standard attributes, private attributes (and a private sequence), nested
sequences five levels deep, free text, and the File Meta Information. :func:`planted_values`
lists what must not survive de-identification.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from tests.synthetic import ROOT, Patient, ct_study

UNIQUE_FILE_META_AE = "MANCHA_PACS_AE"
OPERATOR = "Carrasco^Sanson"
OTHER_ID = "OTHER-ID-55501"
PRIVATE_TEXT = "PRIVATE-SECRET-77123"


@dataclass(frozen=True)
class Planted:
    data: bytes
    original_uids: tuple[str, ...]


def _nested_chain(patient: Patient, depth: int, study_uid: str) -> Dataset:
    """An item holding identifiers and another level, ``depth`` levels down."""
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = generate_uid(prefix=ROOT, entropy_srcs=[study_uid, str(depth)])
    item.PatientID = patient.patient_id
    item.AccessionNumber = patient.accession
    item.PerformingPhysicianName = OPERATOR
    item.StudyDate = "20251224"
    item.ImageComments = f"seen by {patient.name.replace('^', ' ')} tel {patient.phone}"
    item.add_new(0x00290010, "LO", "SYNTH NESTED")
    item.add_new(0x00291001, "LO", PRIVATE_TEXT)
    if depth > 1:
        item.ReferencedSeriesSequence = Sequence([_nested_chain(patient, depth - 1, study_uid)])
    return item


def planted_instance(
    patient: Patient,
    *,
    seed: str = "study-1",
    index: int = 0,
    size: int = 16,
    modality: str | None = None,
    sop_class: str | None = None,
    burned_in: str | None = None,
    source_image_uid: str | None = None,
) -> Planted:
    """One instance of ``patient`` with identifiers planted everywhere (see the module doc)."""
    base = ct_study(patient, count=index + 1, size=size, seed=seed)[index]
    ds = pydicom.dcmread(io.BytesIO(base))
    originals = (
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        str(ds.FrameOfReferenceUID),
    )
    ds.file_meta.SourceApplicationEntityTitle = UNIQUE_FILE_META_AE
    ds.file_meta.PrivateInformationCreatorUID = ROOT + "99"
    ds.file_meta.PrivateInformation = patient.patient_id.encode()
    ds.OtherPatientIDsSequence = Sequence([Dataset()])
    ds.OtherPatientIDsSequence[0].PatientID = OTHER_ID
    ds.OtherPatientIDsSequence[0].IssuerOfPatientID = "OTHER HOSPITAL"
    ds.OperatorsName = OPERATOR
    ds.PatientAge = "064Y"
    ds.PatientWeight = "71.5"
    ds.PatientBirthTime = "071500"
    ds.PatientMotherBirthName = "Dulcinea^Toboso"
    ds.IssuerOfPatientID = "LA MANCHA GENERAL"
    ds.StudyID = patient.accession
    ds.StudyDescription = f"CT CHEST {patient.name.split('^')[0]}"
    ds.SeriesDescription = f"AXIAL {patient.patient_id}"
    ds.AdditionalPatientHistory = (
        f"Call {patient.phone}; lives at {patient.address}; DOB {patient.birth_date}"
    )
    ds.PatientComments = f"{patient.name.split('^')[1]} prefers mornings"
    ds.AcquisitionDate = "20260102"
    ds.ContentDate = "20260102"
    ds.AcquisitionDateTime = "20260102101500.000000+0100"
    ds.InstanceCreationDate = "20260102"
    ds.DeviceSerialNumber = "SN-QX-3141"
    ds.StationName = "MANCHA-CT-01"
    ds.RequestAttributesSequence = Sequence([Dataset()])
    ds.RequestAttributesSequence[0].RequestedProcedureID = patient.accession
    ds.ReferencedStudySequence = Sequence([Dataset()])
    ds.ReferencedStudySequence[0].ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ds.ReferencedStudySequence[0].ReferencedSOPInstanceUID = originals[0]
    ds.ReferencedSeriesSequence = Sequence([_nested_chain(patient, 5, originals[0])])
    if source_image_uid:
        ds.SourceImageSequence = Sequence([Dataset()])
        ds.SourceImageSequence[0].ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SourceImageSequence[0].ReferencedSOPInstanceUID = source_image_uid
    private_item = Dataset()
    private_item.add_new(0x00110010, "LO", "SYNTH SEQ")
    private_item.add_new(0x00111001, "LO", PRIVATE_TEXT)
    ds.add_new(0x00110010, "LO", "SYNTH SEQ")
    ds.add_new(0x00111002, "SQ", Sequence([private_item]))
    if modality:
        ds.Modality = modality
    if sop_class:
        ds.SOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPClassUID = sop_class
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return Planted(out.getvalue(), originals)


def planted_values(patient: Patient) -> list[str]:
    """Every identifying string :func:`planted_instance` puts in (besides the original UIDs)."""
    family, given = patient.name.split("^")[:2]
    return [
        family,
        given,
        patient.patient_id,
        patient.birth_date,
        patient.accession,
        patient.address,
        patient.phone,
        patient.institution,
        "Panza",
        "Sancho",
        "Carrasco",
        "Sanson",
        "Dulcinea",
        "Toboso",
        OTHER_ID,
        PRIVATE_TEXT,
        UNIQUE_FILE_META_AE,
        "SYNTH PRIVATE",
        "SYNTH SEQ",
        "SYNTH NESTED",
        "LA MANCHA GENERAL",
        "OTHER HOSPITAL",
        "SN-QX-3141",
        "MANCHA-CT-01",
        "20260102",
        "20251224",
    ]
