"""A synthetic chest CT series with geometry (a phantom, not a patient): for the viewer's tests
and its benchmark. Pseudonymous from the start, like a study deidentify wrote to the archive.

Each slice is a body ellipse of soft tissue with two lungs, a spine and a nodule (a sphere near
the top of the series), in Hounsfield units stored as ``value + 1024`` (12 bits stored,
rescale intercept -1024), with Image Position/Orientation (Patient), Pixel Spacing and Slice
Thickness so that a viewer can stack, scroll and reconstruct it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.uid import generate_uid

from tests.synthetic import ct_skeleton

ROOT = "1.2.826.0.1.3680043.10.1138.7."


@dataclass(frozen=True)
class Series:
    """What :func:`ct_series` wrote: its UIDs and how many slices."""

    study_uid: str
    series_uid: str
    count: int


def _slice(z: float, size: int, nodule_mm: float, nodule_z: float, spacing: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy = size / 2, size / 2
    hu = np.full((size, size), -1000, dtype=np.float32)  # air
    body = ((xx - cx) / (0.44 * size)) ** 2 + ((yy - cy) / (0.34 * size)) ** 2 <= 1
    hu[body] = 40  # soft tissue
    for side in (-1, 1):
        lung = ((xx - cx - side * 0.2 * size) / (0.15 * size)) ** 2 + (
            (yy - cy + 0.02 * size) / (0.24 * size)
        ) ** 2 <= 1
        hu[lung] = -820
    spine = (xx - cx) ** 2 + (yy - cy - 0.25 * size) ** 2 <= (0.06 * size) ** 2
    hu[spine] = 700
    # a nodule in the right lung, a sphere centred on nodule_z
    radius = max(0.0, (nodule_mm / 2) ** 2 - (z - nodule_z) ** 2) ** 0.5 / spacing
    if radius > 0:
        nodule = (xx - cx + 0.22 * size) ** 2 + (yy - cy + 0.05 * size) ** 2 <= radius**2
        hu[nodule] = 30
    rng = np.random.default_rng(int(abs(z) * 10) + size)
    hu += rng.normal(0, 12, size=hu.shape).astype(np.float32)
    return np.clip(hu + 1024, 0, 4095).astype(np.uint16)


def ct_series(
    pseudonym: str,
    *,
    count: int = 40,
    size: int = 256,
    seed: str = "phantom",
    study_date: str = "20260105",
    nodule_mm: float = 12.0,
    thickness: float = 2.5,
) -> tuple[Series, Iterator[bytes]]:
    """``count`` axial slices of ``size``² pixels (DICOM Part 10 bytes, made one at a time)."""
    study_uid = generate_uid(prefix=ROOT, entropy_srcs=[pseudonym, seed, "study"])
    series_uid = generate_uid(prefix=ROOT, entropy_srcs=[study_uid, "series"])
    spacing = 350.0 / size
    # near the top of the series, where a viewer opens it (superior first)
    nodule_z = (count / 2 - 3) * thickness

    def instances() -> Iterator[bytes]:
        for i in range(count):
            z = (i - count / 2) * thickness
            yield _instance(pseudonym, study_uid, series_uid, i, z, size, spacing, thickness,
                            study_date, _slice(z, size, nodule_mm, nodule_z, spacing))  # fmt: skip

    return Series(study_uid, series_uid, count), instances()


def _instance(
    pseudonym: str,
    study_uid: str,
    series_uid: str,
    index: int,
    z: float,
    size: int,
    spacing: float,
    thickness: float,
    study_date: str,
    pixels: np.ndarray,
) -> bytes:
    ds = ct_skeleton(study_uid, series_uid, index, root=ROOT)
    ds.PatientName = f"{pseudonym}^ANON"
    ds.PatientID = pseudonym
    ds.PatientSex = "O"
    ds.StudyDate = ds.SeriesDate = study_date
    ds.StudyTime = "101500"
    ds.StudyDescription = "CT CHEST (phantom)"
    ds.SeriesDescription = "Axial 2.5 mm"
    ds.Modality = "CT"
    ds.BodyPartExamined = "CHEST"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-175.0, -175.0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [spacing, spacing]
    ds.SliceThickness = thickness
    ds.SliceLocation = z
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.WindowCenter = -600
    ds.WindowWidth = 1500
    ds.PixelData = pixels.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
