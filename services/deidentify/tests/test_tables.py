"""The engine against every attribute of the PS3.15 2026c Basic Profile table."""

import io

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from secondread_deidentify.engine import DUMMY, Engine, Op, build_profile, resolve
from secondread_deidentify.options import DeidOptions
from secondread_deidentify.tables import (
    CLEAN_DESCRIPTORS,
    EDITION,
    RETAIN_PATIENT_CHARACTERISTICS,
    Action,
    load_table,
)

KEY = b"k" * 32
BASIC = DeidOptions(False, False, False)

VALUES = {
    "AE": "PLANTEDAE",
    "AS": "041Y",
    "CS": "PLANTED",
    "DA": "20200304",
    "DS": "1.5",
    "DT": "20200304101112",
    "FD": 1.5,
    "FL": 1.5,
    "IS": "7",
    "LO": "PLANTED LO",
    "LT": "PLANTED LT",
    "OB": b"PLANTEDB",
    "OW": b"PLANTEDW",
    "PN": "Planted^Person",
    "SH": "PLANTED SH",
    "SL": 7,
    "SQ": None,
    "SS": 7,
    "ST": "PLANTED ST",
    "TM": "101112",
    "UC": "PLANTED UC",
    "UI": "1.2.826.0.1.3680043.10.1138.4242",
    "UL": 7,
    "UN": b"PLANTEDU",
    "UR": "http://planted.example/",
    "US": 7,
    "UT": "PLANTED UT",
}


def _every_table_attribute() -> tuple[Dataset, dict[int, str]]:
    ds = Dataset()
    vrs: dict[int, str] = {}
    for tag in load_table().actions:
        if tag >> 16 in (0x0000, 0x0002, 0x0004, 0x0088):
            continue  # command, file meta and DICOMDIR attributes: not in a stored instance
        try:
            vr = dictionary_VR(tag).split(" ")[0]
        except KeyError:
            continue  # newer than pydicom's data dictionary: tested by its explicit VR below
        if vr not in VALUES:
            continue
        if vr == "SQ":
            item = Dataset()
            item.CodeMeaning = "PLANTED ITEM"
            ds.add_new(tag, vr, [item])
        else:
            ds.add_new(tag, vr, VALUES[vr])
        vrs[tag] = vr
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.1138.1"
    ds.Modality = "CT"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds, vrs


def test_the_table_is_the_2026c_edition_and_complete() -> None:
    table = load_table()
    assert EDITION == "2026c"
    assert len(table.actions) > 600
    assert {a for a in table.actions.values()} == set(Action) - {Action.K, Action.C}
    assert table.action(0x60023000) is Action.X  # Overlay Data (60xx,3000)
    assert table.action(0x50100010) is Action.X  # Curve Data (50xx,xxxx)
    assert table.action(0x00100010) is Action.Z  # Patient's Name
    assert table.action(0x00080018) is Action.U  # SOP Instance UID
    assert table.action(0x00280010) is None  # Rows: not in the table


def test_every_option_keyword_is_an_attribute_of_the_table() -> None:
    keywords = load_table().keywords()
    assert set(RETAIN_PATIENT_CHARACTERISTICS) <= keywords
    assert CLEAN_DESCRIPTORS <= keywords


@pytest.mark.parametrize("options", [BASIC, DeidOptions()])
def test_every_attribute_of_the_table_gets_its_action(options: DeidOptions) -> None:
    ds, vrs = _every_table_attribute()
    assert len(vrs) > 550
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out = pydicom.dcmread(io.BytesIO(Engine(KEY, options).deidentify(buf.getvalue()).data))
    profile = build_profile(options)
    forced = {"PatientID", "PatientName", "SOPInstanceUID"}  # replaced by pseudonyms
    checked = 0
    for tag, vr in vrs.items():
        kw = keyword_for_tag(tag)
        if kw in forced:
            continue
        op = profile.ops[tag]
        elem = out.get(tag)
        original = VALUES[vr]
        if op is Op.REMOVE:
            assert elem is None, kw
        elif op is Op.EMPTY:
            assert elem is not None and (elem.value in (None, "", b"") or elem.value == []), kw
        elif op is Op.KEEP:
            assert elem is not None, kw
            if vr != "SQ":
                assert elem.value == pydicom.dataelem.DataElement(tag, vr, original).value, kw
        elif op is Op.DUMMY:
            assert elem is not None, kw
            if vr == "SQ":
                assert len(elem.value) == 1 and len(elem.value[0]) == 0, kw
            elif vr in DUMMY:
                assert elem.value == DUMMY[vr], kw
            elif vr != "UI":
                assert elem.value != original, kw
        elif op is Op.REMAP:
            assert elem is not None, kw
            if vr == "UI":
                assert str(elem.value).startswith("2.25."), kw
        elif op is Op.SHIFT:
            assert elem is not None, kw
            if vr == "DA":
                assert elem.value != original and len(elem.value) == 8, kw
            elif vr == "DT":
                assert elem.value != original and elem.value.endswith("101112"), kw
            else:
                assert elem.value == original, kw
        elif op is Op.CLEAN:
            assert elem is not None, kw
        elif op is Op.RECURSE:
            assert elem is not None and len(elem.value) == 1, kw
        checked += 1
    assert checked > 550


def test_conditional_actions_take_the_choice_valid_for_every_type() -> None:
    o = BASIC
    assert resolve(Action.X_Z, "X", "LO", o) is Op.EMPTY
    assert resolve(Action.X_D, "X", "LO", o) is Op.DUMMY
    assert resolve(Action.Z_D, "X", "LO", o) is Op.DUMMY
    assert resolve(Action.X_Z_D, "X", "LO", o) is Op.DUMMY
    assert resolve(Action.X_Z_U, "X", "SQ", o) is Op.RECURSE
    assert resolve(Action.X_Z_D, "X", "SQ", o) is Op.REMOVE
    assert resolve(Action.D, "ContentSequence", "SQ", o) is Op.RECURSE
    assert resolve(Action.D, "PersonIdentificationCodeSequence", "SQ", o) is Op.DUMMY


def test_options_override_the_basic_action() -> None:
    full = DeidOptions()
    assert resolve(Action.X, "PatientAge", "AS", full) is Op.KEEP
    assert resolve(Action.X, "PatientAge", "AS", BASIC) is Op.REMOVE
    assert resolve(Action.X, "StudyDescription", "LO", full) is Op.CLEAN
    assert resolve(Action.Z, "StudyDate", "DA", full) is Op.SHIFT
    assert resolve(Action.Z, "PatientBirthDate", "DA", full) is Op.EMPTY


def test_an_attribute_newer_than_the_data_dictionary_is_still_handled() -> None:
    """(0040,B034) is in the 2026c table but not in pydicom 3.0's dictionary."""
    table = load_table()
    assert table.action(0x0040B034) is not None
    ds, _ = _every_table_attribute()
    ds.add_new(0x0040B034, "LO", "PLANTED NEW")
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out = Engine(KEY, BASIC).deidentify(buf.getvalue()).data
    assert b"PLANTED NEW" not in out
