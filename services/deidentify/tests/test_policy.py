"""Quarantine policy: burned-in annotation, risky modalities and SOP classes, unknown classes
carrying free text, and the hook for more rules."""

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, UltrasoundImageStorage

from secondread_deidentify.engine import Engine
from secondread_deidentify.policy import (
    DEFAULT_RULES,
    burned_in_annotation,
    quarantine_reason,
    risky_modality,
    unknown_sop_class_with_free_text,
)
from tests.deid_corpus import planted_instance
from tests.synthetic import Patient

KEY = b"k" * 32
SC = "1.2.840.10008.5.1.4.1.1.7"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
UNKNOWN = "1.2.826.0.1.3680043.10.1138.777"


def run(**kw: str) -> str | None:
    return Engine(KEY).deidentify(planted_instance(Patient(), **kw).data).quarantine_reason


def test_ct_passes() -> None:
    assert run() is None


def test_burned_in_annotation_yes_is_quarantined() -> None:
    assert run(burned_in="YES") == "BurnedInAnnotation is YES"


@pytest.mark.parametrize(
    ("modality", "sop_class"),
    [
        ("US", UltrasoundImageStorage),
        ("OT", SC),
        ("ES", "1.2.840.10008.5.1.4.1.1.77.1.1"),
        ("XA", "1.2.840.10008.5.1.4.1.1.12.1"),
    ],
)
def test_risky_modalities_are_quarantined_unless_marked_no(modality: str, sop_class: str) -> None:
    assert run(modality=modality, sop_class=sop_class) is not None
    assert run(modality=modality, sop_class=sop_class, burned_in="NO") is None


def test_secondary_capture_of_a_ct_modality_is_still_quarantined() -> None:
    assert "SOP class" in (run(sop_class=SC) or "")


def test_unknown_sop_class_with_free_text_is_quarantined() -> None:
    # ImageComments is cleaned (kept, scrubbed) under Clean Descriptors: still free text.
    assert run(sop_class=UNKNOWN) == "unknown SOP class carries free text"


def test_unknown_sop_class_without_free_text_passes() -> None:
    ds = Dataset()
    ds.SOPClassUID = UNKNOWN
    ds.Modality = "CT"
    assert unknown_sop_class_with_free_text(ds) is None
    ds.ContentSequence = [Dataset()]
    ds.ContentSequence[0].TextValue = "x"
    assert unknown_sop_class_with_free_text(ds) is not None
    ds.SOPClassUID = CTImageStorage
    assert unknown_sop_class_with_free_text(ds) is None


def test_sr_text_is_quarantined() -> None:
    ds = Dataset()
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.Modality = "SR"
    ds.ContentSequence = [Dataset()]
    ds.ContentSequence[0].ContentSequence = [Dataset()]
    ds.ContentSequence[0].ContentSequence[0].TextValue = "Findings"
    assert quarantine_reason(ds) == "unknown SOP class carries free text"


def test_rules_run_in_order_and_first_reason_wins() -> None:
    ds = Dataset()
    ds.BurnedInAnnotation = "YES"
    ds.Modality = "US"
    assert quarantine_reason(ds) == burned_in_annotation(ds)
    assert risky_modality(ds) is not None
    assert quarantine_reason(ds, ()) is None


def test_a_pixel_text_detector_plugs_in_as_a_rule() -> None:
    seen: list[bytes] = []

    def pixel_text(ds: pydicom.Dataset) -> str | None:
        seen.append(ds.PixelData)
        return "pixel text found" if ds.PixelData else None

    engine = Engine(KEY, rules=(*DEFAULT_RULES, pixel_text))
    result = engine.deidentify(planted_instance(Patient()).data)
    assert result.quarantine_reason == "pixel text found"
    assert (
        seen
        and seen[0]
        == pydicom.dcmread(__import__("io").BytesIO(planted_instance(Patient()).data)).PixelData
    )
