"""The engine on the planted corpus: nothing identifying survives, the rest stays consistent."""

import io
import uuid
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.sr.codedict import codes

from secondread_deidentify.engine import Engine, deidentify
from secondread_deidentify.errors import InvalidInstanceError
from secondread_deidentify.options import DeidOptions
from tests.deid_corpus import planted_instance, planted_values
from tests.synthetic import Patient, ct_study

KEY = b"0123456789abcdef" * 2


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def all_uids(ds: pydicom.Dataset) -> set[str]:
    out: set[str] = set()
    for elem in ds.iterall():
        if elem.VR == "UI" and elem.value:
            out.add(str(elem.value))
    return out


def test_no_planted_value_survives_anywhere_in_the_output_bytes() -> None:
    patient = Patient()
    planted = planted_instance(patient)
    result = Engine(KEY).deidentify(planted.data)
    low = result.data.lower()
    for value in [*planted_values(patient), *planted.original_uids]:
        assert value.lower().encode() not in low, value
    # the planted corpus really carried them
    for value in planted_values(patient):
        assert value.lower().encode() in planted.data.lower(), value


def test_pixel_data_is_untouched_and_file_meta_is_consistent() -> None:
    planted = planted_instance(Patient(), size=64)
    before = read(planted.data)
    after = read(Engine(KEY).deidentify(planted.data).data)
    assert after.PixelData == before.PixelData
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert after.file_meta.MediaStorageSOPClassUID == after.SOPClassUID
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert "SourceApplicationEntityTitle" not in after.file_meta
    assert "PrivateInformation" not in after.file_meta
    assert after.SOPClassUID == before.SOPClassUID
    assert after.SOPInstanceUID != before.SOPInstanceUID


def test_private_attributes_are_removed_at_every_depth() -> None:
    after = read(Engine(KEY).deidentify(planted_instance(Patient()).data).data)
    assert not [e for e in after.iterall() if e.tag.is_private]


def test_nested_sequences_are_deidentified_five_levels_down() -> None:
    after = read(Engine(KEY).deidentify(planted_instance(Patient()).data).data)
    item, depth = after.ReferencedSeriesSequence[0], 1
    while "ReferencedSeriesSequence" in item:
        assert item.AccessionNumber == ""
        assert item.StudyDate != "20251224" and len(item.StudyDate) == 8
        assert "PerformingPhysicianName" not in item
        assert str(item.ReferencedSOPInstanceUID).startswith("2.25.")
        item, depth = item.ReferencedSeriesSequence[0], depth + 1
    assert depth == 5


def test_identity_attributes_and_method_codes_are_set() -> None:
    result = Engine(KEY).deidentify(planted_instance(Patient()).data)
    after = read(result.data)
    assert after.PatientIdentityRemoved == "YES"
    assert after.PatientID == result.pseudonym
    assert after.PatientName == f"{result.pseudonym}^ANON"
    assert after.LongitudinalTemporalInformationModified == "MODIFIED"
    got = {
        (i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning)
        for i in after.DeidentificationMethodCodeSequence
    }
    cid = codes.cid7050
    expected = {
        cid.BasicApplicationConfidentialityProfile,
        cid.RetainLongitudinalTemporalInformationModifiedDatesOption,
        cid.RetainPatientCharacteristicsOption,
        cid.CleanDescriptorsOption,
    }
    assert got == {(c.value, c.scheme_designator, c.meaning) for c in expected}
    assert "2026c" in after.DeidentificationMethod


def test_options_change_what_is_kept() -> None:
    planted = planted_instance(Patient())
    on = read(Engine(KEY).deidentify(planted.data).data)
    off = read(
        Engine(
            KEY,
            DeidOptions(
                retain_longitudinal_modified_dates=False,
                retain_patient_characteristics=False,
                clean_descriptors=False,
            ),
        )
        .deidentify(planted.data)
        .data
    )
    assert on.PatientAge == "064Y" and "PatientAge" not in off
    assert on.PatientSex == "M" and off.PatientSex == ""
    assert on.StudyDate and off.StudyDate == ""
    assert on.StudyDescription == "CT CHEST [NAME]" and "StudyDescription" not in off
    assert [i.CodeValue for i in off.DeidentificationMethodCodeSequence] == ["113100"]
    assert "LongitudinalTemporalInformationModified" not in off


def test_dates_shift_by_the_same_offset_everywhere_and_times_are_kept() -> None:
    result = Engine(KEY).deidentify(planted_instance(Patient()).data)
    after = read(result.data)
    from datetime import date, timedelta

    expected = (date(2026, 1, 2) + timedelta(days=result.date_shift_days)).strftime("%Y%m%d")
    assert after.StudyDate == after.ContentDate == after.AcquisitionDate == expected
    assert after.AcquisitionDateTime == expected + "101500.000000+0100"
    assert after.StudyTime == "101500"
    assert -365 <= result.date_shift_days <= -1


def test_uids_are_consistent_within_a_study_and_across_studies() -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:8]}")
    engine = Engine(KEY)
    # the planted instances name their issuer; the priors get it from the sending hospital
    prior = [
        engine.deidentify(d, default_issuer="LA MANCHA GENERAL")
        for d in ct_study(patient, count=2, seed="prior")
    ]
    prior_original_sop = read(ct_study(patient, count=1, seed="prior")[0]).SOPInstanceUID
    current = [
        engine.deidentify(
            planted_instance(
                patient, seed="current", index=i, source_image_uid=prior_original_sop
            ).data
        )
        for i in range(3)
    ]
    assert len({r.study_instance_uid for r in current}) == 1
    assert len({r.series_instance_uid for r in current}) == 1
    assert len({r.sop_instance_uid for r in current}) == 3
    assert {r.pseudonym for r in current} == {r.pseudonym for r in prior}
    assert current[0].study_instance_uid != prior[0].study_instance_uid
    ds = read(current[0].data)
    # A reference to the prior instance points at that instance's new UID.
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == prior[0].sop_instance_uid
    frames = {read(r.data).FrameOfReferenceUID for r in current}
    assert len(frames) == 1


def test_pseudonyms_and_uids_are_stable_across_engines() -> None:
    data = planted_instance(Patient()).data
    a, b = Engine(KEY).deidentify(data), Engine(bytes(KEY)).deidentify(data)
    assert a.data == b.data
    c = Engine(b"another key of thirty-two bytes!").deidentify(data)
    assert c.pseudonym != a.pseudonym and c.sop_instance_uid != a.sop_instance_uid


def test_two_patients_never_share_a_pseudonym() -> None:
    engine = Engine(KEY)
    seen = {
        engine.deidentify(ct_study(Patient(patient_id=f"ID-{i}"), count=1, size=4)[0]).pseudonym
        for i in range(200)
    }
    assert len(seen) == 200


def test_same_id_from_two_issuers_is_two_patients() -> None:
    data = ct_study(Patient(), count=1, size=4)[0]
    engine = Engine(KEY)
    a = engine.deidentify(data, default_issuer="hospital-a").pseudonym
    b = engine.deidentify(data, default_issuer="hospital-b").pseudonym
    assert a != b


def test_module_function_matches_engine() -> None:
    data = ct_study(Patient(), count=1, size=4)[0]
    assert deidentify(data, KEY).data == Engine(KEY).deidentify(data).data


@pytest.mark.parametrize("data", [b"", b"not dicom at all" * 20, b"\0" * 128 + b"DICM" + b"\x02"])
def test_bad_input_is_a_named_error(data: bytes) -> None:
    with pytest.raises(InvalidInstanceError):
        Engine(KEY).deidentify(data)


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError):
        Engine(b"")


def _resave(data: bytes, **kw: object) -> bytes:
    ds = read(data)
    for k, v in kw.items():
        setattr(ds, k, v)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_implicit_vr_encapsulated_and_trailing_elements_keep_pixels_and_lose_phi() -> None:
    from pydicom.encaps import encapsulate
    from pydicom.uid import ImplicitVRLittleEndian, JPEGBaseline8Bit

    from secondread_deidentify.engine import find_pixel_tail

    patient = Patient()
    base = planted_instance(patient, size=16).data
    implicit = read(base)
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buf = io.BytesIO()
    implicit.save_as(buf, enforce_file_format=True)

    encaps = read(base)
    encaps.file_meta.TransferSyntaxUID = JPEGBaseline8Bit  # frames are opaque bytes here
    encaps.PixelData = encapsulate([b"\xff\xd8frame-one\xff\xd9", b"\xff\xd8frame-two\xff\xd9"])
    encaps["PixelData"].VR = "OB"
    ebuf = io.BytesIO()
    encaps.save_as(ebuf, enforce_file_format=True)

    trailing = read(base)
    trailing.DataSetTrailingPadding = b"\0" * 8
    tbuf = io.BytesIO()
    trailing.save_as(tbuf, enforce_file_format=True)

    for data in (buf.getvalue(), ebuf.getvalue(), tbuf.getvalue()):
        before = read(data)
        result = Engine(KEY).deidentify(data)
        after = read(result.data)
        assert after.PixelData == before.PixelData
        low = result.data.lower()
        for value in planted_values(patient):
            assert value.lower().encode() not in low, value
    probe = io.BytesIO(tbuf.getvalue())
    ds = pydicom.dcmread(probe, stop_before_pixels=True)
    assert find_pixel_tail(tbuf.getvalue(), probe.tell(), ds) is None  # trailing: full path
    probe = io.BytesIO(ebuf.getvalue())
    ds = pydicom.dcmread(probe, stop_before_pixels=True)
    tail = find_pixel_tail(ebuf.getvalue(), probe.tell(), ds)
    assert tail is not None and tail.vr == "OB"


def test_implicit_vr_data_under_an_explicit_syntax_is_written_as_explicit_vr() -> None:
    """pydicom's SC_rgb_jpeg.dcm: its dataset is implicit VR although its transfer syntax
    (JPEG Baseline) is explicit. The output is valid explicit VR with the pixels unchanged."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file("SC_rgb_jpeg.dcm")
    assert path is not None
    with pytest.warns(UserWarning, match="found implicit VR"):  # the input is malformed
        before = pydicom.dcmread(path)
        result = Engine(KEY).deidentify(Path(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydicom warns when it finds implicit VR instead
        after = read(result.data)
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert after.get_item(0x00080016).VR == "UI" and after.get_item(0x7FE00010).VR == "OB"
    assert after.PixelData == before.PixelData
    assert after.PatientIdentityRemoved == "YES" and after.PatientID == result.pseudonym


def test_an_engine_that_remembers_gives_what_a_fresh_engine_gives() -> None:
    """The memos (changed values, identities) only save work: a series through one engine is
    byte for byte the series through a fresh engine per instance."""
    series = ct_study(Patient(), count=4, size=8) + ct_study(
        Patient(name="Panza^Teresa", patient_id="MRN-0002"), count=3, size=8
    )
    engine = Engine(KEY)
    assert [engine.deidentify(d).data for d in series] == [
        Engine(KEY).deidentify(d).data for d in series
    ]
    assert engine._memo and engine._identities  # the memos were used


def test_remembered_text_and_dates_never_cross_patients() -> None:
    """The same bytes in two patients' instances are changed with each patient's own scrubber
    and date shift."""
    dulcinea = Patient(name="Toboso^Dulcinea", patient_id="MRN-0003", birth_date="19700101")
    comment = "seen with Toboso^Dulcinea on 2026-01-02"
    first = _resave(ct_study(Patient(), count=1, size=8)[0], ImageComments=comment)
    second = _resave(ct_study(dulcinea, count=1, size=8)[0], ImageComments=comment)
    engine = Engine(KEY)
    a, b = read(engine.deidentify(first).data), read(engine.deidentify(second).data)
    assert "Toboso" in a.ImageComments  # not a known identifier of the first patient
    assert "Toboso" not in b.ImageComments  # the second patient's own name: scrubbed
    assert b.ImageComments == read(Engine(KEY).deidentify(second).data).ImageComments
    assert a.StudyDate != b.StudyDate  # same date read, two patients' shifts


def test_a_remembered_identity_keeps_the_sending_hospital() -> None:
    data = ct_study(Patient(), count=1, size=8)[0]
    engine = Engine(KEY)
    one = engine.deidentify(data, default_issuer="HOSP-A")
    two = engine.deidentify(data, default_issuer="HOSP-B")
    assert one.pseudonym != two.pseudonym
    assert one.pseudonym == Engine(KEY).deidentify(data, default_issuer="HOSP-A").pseudonym


def _bundled_folder() -> Path:
    import pydicom.data

    return Path(pydicom.data.__file__).parent / "test_files"


def _pydicom_part10_files() -> list[Path]:
    """The Part 10 files of pydicom's bundled test data (the folder itself: the data manager
    would also try to download the large ones)."""
    folder = _bundled_folder()
    found = [p for p in folder.rglob("*") if p.is_file() and p.stat().st_size < 50_000_000]
    return sorted(p for p in found if p.read_bytes()[128:132] == b"DICM")


BUNDLED_REFUSED = {
    # Media storage directories: an index, not an instance (no SOP Class/Instance UID).
    "dicomdirtests/DICOMDIR",
    "dicomdirtests/DICOMDIR-bigEnd",
    "dicomdirtests/DICOMDIR-empty.dcm",
    "dicomdirtests/DICOMDIR-implicit",
    "dicomdirtests/DICOMDIR-nooffset",
    "dicomdirtests/DICOMDIR-nopatient",
    "dicomdirtests/DICOMDIR-reordered",
    "dicomdirtests/TINY_ALPHA/DICOMDIR",
    # Fragments made to test one parser feature: their datasets carry no SOP UIDs at all.
    "UN_sequence.dcm",
    "empty_charset_LEI.dcm",
    "meta_missing_tsyntax.dcm",
    "nested_priv_SQ.dcm",
    "no_meta_group_length.dcm",
    "priv_SQ.dcm",
}
"""pydicom's bundled files the engine must refuse (InvalidInstanceError); every other one it
must de-identify."""

BUNDLED_WRITTEN = 149
"""How many of the 163 bundled Part 10 files (pydicom 3.0) are de-identified and written."""


def _bundled_id(path: Path) -> str:
    return str(path.relative_to(_bundled_folder()))


def test_the_bundled_files_are_the_ones_counted() -> None:
    """The counts below are of pydicom's bundled data as it is: a pydicom upgrade that adds or
    drops files fails here, naming the difference, instead of silently testing fewer."""
    names = {_bundled_id(p) for p in _pydicom_part10_files()}
    assert BUNDLED_REFUSED <= names, BUNDLED_REFUSED - names
    assert len(names - BUNDLED_REFUSED) == BUNDLED_WRITTEN


@pytest.mark.parametrize("path", _pydicom_part10_files(), ids=_bundled_id)
def test_every_bundled_pydicom_file_is_refused_by_name_or_written_readable(path: Path) -> None:
    """pydicom's own test files (every transfer syntax it ships: implicit, big endian, deflated,
    encapsulated, malformed ones): the ones in :data:`BUNDLED_REFUSED` are refused with a named
    error, every other one is de-identified into a file pydicom reads back, with the pixel data
    unchanged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # several inputs are malformed on purpose
        if _bundled_id(path) in BUNDLED_REFUSED:
            with pytest.raises(InvalidInstanceError, match="SOPInstanceUID"):
                Engine(KEY).deidentify(path)
            return
        result = Engine(KEY).deidentify(path)
        before = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        after = read(result.data)
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert after.get("PixelData") == before.get("PixelData")
    assert after.PatientIdentityRemoved == "YES" and after.PatientID == result.pseudonym
