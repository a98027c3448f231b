"""Synthetic DICOM studies for tests and benchmarks: generated, never real patients.

Every identifying value is invented (see :data:`PLANTED`); tests assert that none of them leaves
the PHI zone.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid

from secondread_shared.dicom import new_instance

# Fixed seed UIDs so a test can predict nothing about remapping but can compare runs.
ROOT = "1.2.826.0.1.3680043.10.1138."


@dataclass(frozen=True)
class Patient:
    name: str = "Quixote^Alonso"
    patient_id: str = "MRN-4242-7781"
    birth_date: str = "19610315"
    sex: str = "M"
    accession: str = "ACC-99120"
    address: str = "12 Windmill Lane, La Mancha"
    phone: str = "+34-555-0100"
    institution: str = "Sancho General Hospital"


def planted(patient: Patient) -> list[str]:
    """The identifying strings a test must never find outside the PHI zone."""
    return [
        patient.name,
        patient.name.split("^")[0],
        patient.patient_id,
        patient.birth_date,
        patient.accession,
        patient.address,
        patient.phone,
        patient.institution,
    ]


def leaks(blob: bytes, secrets: list[bytes]) -> list[bytes]:
    """The (lower-case) secrets found in ``blob``, case-insensitively. One that starts or ends
    with a digit counts only where no digit runs on: a number planted in a study stands by
    chance inside random digit strings (the ZIP code 01103 in a UID 2.25.…296201103612…)."""
    low = blob.lower()
    return [s for s in secrets if re.search(_bounded(s), low)]


def _bounded(secret: bytes) -> bytes:
    head = rb"(?<![0-9])" if secret[:1].isdigit() else b""
    tail = rb"(?![0-9])" if secret[-1:].isdigit() else b""
    return head + re.escape(secret) + tail


# Free text naming people, places and numbers that no header and no intake field knows
# (bench/freetext and tests/e2e/test_zone_scan.py). Invented, like everything here.
FREE_TEXT_QUESTION = (
    "Dr. Sarah Whitfield (mobile 617-555-0142) asks whether the Bosniak IIF cyst seen on "
    "14 March 2024 at Riverside Imaging Center has grown; husband Thaddeus will bring the CD."
)
FREE_TEXT_REPORT = (
    "History of Hodgkin lymphoma. Outside CT of 3/15/24 from Lakeside Clinic, 1200 Harbor Blvd, "
    "Springfield, MA 01103 (nurse Kim Okonkwo, fax 413-555-0199, MRN 88412093). Baker cyst in "
    "the right knee. Prostate PI-RADS 4. Patient is 93 years old."
)
FREE_TEXT_DICOM = {
    "AdditionalPatientHistory": "Seen by Dr Okonkwo at Lakeside Clinic on 2/3/2022.",
    "ImageComments": "Outside films from Riverside Imaging Center, call 617-555-0142.",
    "PatientComments": "Husband Thaddeus Whitfield drives her.",
}
FREE_TEXT_PLANTED = (
    "Whitfield", "Okonkwo", "Thaddeus", "617-555-0142", "Riverside Imaging", "Lakeside Clinic",
    "Harbor Blvd", "01103", "413-555-0199", "88412093", "14 March 2024", "3/15/24", "2/3/2022",
    "93 years",
)  # fmt: skip
"""Distinctive parts of the free-text identifiers above, none of them in any header."""
FREE_TEXT_CLINICAL = ("Bosniak IIF", "Hodgkin lymphoma", "Baker cyst", "PI-RADS 4")
"""Clinical terms of the free text above that must reach the reader."""


def ct_skeleton(study_uid: str, series_uid: str, index: int, *, root: str = ROOT) -> Dataset:
    """A CT Image Storage dataset with its file meta and UIDs (the instance's derived from the
    series and ``index``, the frame of reference from the study), nothing else yet."""
    sop_uid = generate_uid(prefix=root, entropy_srcs=[series_uid, str(index)])
    ds = new_instance(CTImageStorage, sop_uid)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = generate_uid(prefix=root, entropy_srcs=[study_uid, "for"])
    return ds


def ct_instance(
    patient: Patient,
    *,
    study_uid: str,
    series_uid: str,
    index: int,
    size: int = 64,
    study_date: str = "20260102",
    body_part: str = "CHEST",
    free_text: Mapping[str, str] | None = None,
) -> bytes:
    """One CT image as DICOM Part 10 bytes, with PHI planted in standard and private tags.

    ``free_text`` sets further text attributes by keyword (``AdditionalPatientHistory``, ...).
    """
    ds = ct_skeleton(study_uid, series_uid, index)
    ds.Modality = "CT"
    ds.BodyPartExamined = body_part
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.PatientAddress = patient.address
    ds.PatientTelephoneNumbers = patient.phone
    ds.InstitutionName = patient.institution
    ds.AccessionNumber = patient.accession
    ds.ReferringPhysicianName = "Panza^Sancho"
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = "101500"
    ds.StudyDescription = "CT CHEST"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImageComments = f"patient {patient.name} seen today"
    for keyword, value in (free_text or {}).items():
        setattr(ds, keyword, value)
    ds.add_new(0x00090010, "LO", "SYNTH PRIVATE")
    ds.add_new(0x00091001, "LO", patient.patient_id)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    # Deterministic 12-bit noise: 16-bit little-endian words with the top nibble cleared.
    noise = bytearray(hashlib.shake_256(f"{ds.SOPInstanceUID}".encode()).digest(size * size * 2))
    noise[1::2] = bytes(b & 0x0F for b in noise[1::2])
    ds.PixelData = bytes(noise)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ct_study(
    patient: Patient,
    *,
    count: int = 3,
    size: int = 64,
    seed: str = "study-1",
    free_text: Mapping[str, str] | None = None,
    **kw: str,
) -> list[bytes]:
    """``count`` CT instances of one study of ``patient``."""
    study_uid = generate_uid(prefix=ROOT, entropy_srcs=[patient.patient_id, seed])
    series_uid = generate_uid(prefix=ROOT, entropy_srcs=[study_uid, "series-1"])
    return [
        ct_instance(
            patient,
            study_uid=study_uid,
            series_uid=series_uid,
            index=i,
            size=size,
            free_text=free_text,
            **kw,
        )
        for i in range(count)
    ]


def write_study(folder: Path, instances: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(instances):
        (folder / f"IM{i:05d}.dcm").write_bytes(data)
    return folder


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
