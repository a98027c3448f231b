"""Quarantine policy: which de-identified instances are not safe to leave the PHI zone.

The header-only Basic Profile (DICOM PS3.15 E.2) does not clean pixel data; the Clean Pixel Data
Option (E.3.1, code 113101) is not applied. So an instance whose pixels may show identifying text
is quarantined for review instead of passed on:

- ``BurnedInAnnotation`` (0028,0301) is ``YES`` (PS3.3 C.7.6.1.1.7);
- its modality or SOP class is one where burned-in text is common (ultrasound, secondary capture,
  endoscopy and other visible-light photography, legacy X-ray angiography), unless
  ``BurnedInAnnotation`` is explicitly ``NO``;
- its SOP class is not one whose IOD this engine has been reviewed against, and it still
  carries free text (LT, ST, UT, or an SR ``TextValue``) after de-identification.

A policy is a sequence of :class:`Rule` callables; the first reason found wins. A pixel-text
detector (OCR) is one more rule: it receives the de-identified dataset, pixel data included (a
bytes-like value, a read-only ``memoryview`` when the engine kept it out of pydicom).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    EnhancedPETImageStorage,
    LegacyConvertedEnhancedCTImageStorage,
    LegacyConvertedEnhancedMRImageStorage,
    LegacyConvertedEnhancedPETImageStorage,
    MRImageStorage,
    NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    XRayAngiographicImageStorage,
)


class Rule(Protocol):
    """One quarantine rule: a reason when ``ds`` is not safe, else ``None``."""

    def __call__(self, ds: Dataset, /) -> str | None: ...


RISKY_MODALITIES: Final = frozenset({"US", "ES", "XC", "GM", "SC", "OT", "DOC"})
"""Modalities (PS3.3 C.7.3.1.1.1) where burned-in text is common."""

RISKY_SOP_CLASSES: Final = frozenset(
    {
        UltrasoundImageStorage,
        UltrasoundMultiFrameImageStorage,
        XRayAngiographicImageStorage,  # legacy XA: many systems burn in demographics
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
        "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
        "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
        "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
        "1.2.840.10008.5.1.4.1.1.77.1.1",  # VL Endoscopic Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.1.1",  # Video Endoscopic Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.4.1",  # Video Photographic Image Storage
    }
)
"""SOP classes (PS3.4 Annex B) where burned-in text is common."""

REVIEWED_SOP_CLASSES: Final = frozenset(
    {
        CTImageStorage,
        EnhancedCTImageStorage,
        LegacyConvertedEnhancedCTImageStorage,
        MRImageStorage,
        EnhancedMRImageStorage,
        LegacyConvertedEnhancedMRImageStorage,
        PositronEmissionTomographyImageStorage,
        EnhancedPETImageStorage,
        LegacyConvertedEnhancedPETImageStorage,
        NuclearMedicineImageStorage,
        DigitalXRayImageStorageForPresentation,
        DigitalXRayImageStorageForProcessing,
        DigitalMammographyXRayImageStorageForPresentation,
        DigitalMammographyXRayImageStorageForProcessing,
        "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
        *RISKY_SOP_CLASSES,
    }
)
"""SOP classes whose IODs the Basic Profile table was reviewed against for this service."""

FREE_TEXT_VRS: Final = frozenset({"LT", "ST", "UT"})


def _burned_in(ds: Dataset) -> str:
    return str(ds.get("BurnedInAnnotation", "")).strip().upper()


def burned_in_annotation(ds: Dataset) -> str | None:
    """Quarantine when ``BurnedInAnnotation`` is ``YES``."""
    return "BurnedInAnnotation is YES" if _burned_in(ds) == "YES" else None


def risky_modality(ds: Dataset) -> str | None:
    """Quarantine a modality or SOP class prone to burned-in text unless marked ``NO``."""
    if _burned_in(ds) == "NO":
        return None
    modality = str(ds.get("Modality", "")).strip().upper()
    if modality in RISKY_MODALITIES:
        return f"modality {modality} may carry burned-in text (BurnedInAnnotation not NO)"
    if str(ds.get("SOPClassUID", "")) in RISKY_SOP_CLASSES:
        return "SOP class may carry burned-in text (BurnedInAnnotation not NO)"
    return None


def _has_free_text(ds: Dataset) -> bool:
    for elem in ds:
        if elem.VR == "SQ":
            if any(_has_free_text(item) for item in elem.value):
                return True
        elif elem.VR in FREE_TEXT_VRS and elem.value:
            return True
        elif elem.keyword == "TextValue" and elem.value:
            return True
    return False


def unknown_sop_class_with_free_text(ds: Dataset) -> str | None:
    """Quarantine an unreviewed SOP class that still carries free text."""
    if str(ds.get("SOPClassUID", "")) in REVIEWED_SOP_CLASSES:
        return None
    if _has_free_text(ds):
        return "unknown SOP class carries free text"
    return None


DEFAULT_RULES: Final[tuple[Rule, ...]] = (
    burned_in_annotation,
    risky_modality,
    unknown_sop_class_with_free_text,
)


def quarantine_reason(ds: Dataset, rules: Sequence[Rule] = DEFAULT_RULES) -> str | None:
    """The first reason any rule gives for keeping ``ds`` out of the clear zone.

    Parameters
    ----------
    ds
        The de-identified dataset (pixel data unchanged).
    rules
        The policy; defaults to :data:`DEFAULT_RULES`.
    """
    for rule in rules:
        reason = rule(ds)
        if reason:
            return reason
    return None
