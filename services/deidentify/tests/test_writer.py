"""The fast Part 10 writer produces exactly pydicom's bytes, or declines."""

import io

import pydicom
import pytest
from pydicom.dataset import Dataset

import secondread_deidentify.engine as engine_module
from secondread_deidentify.engine import Engine
from secondread_deidentify.writer import part10_bytes
from tests.deid_corpus import planted_instance
from tests.synthetic import Patient, ct_study

KEY = b"writer-test-key-0123456789abcdef"


def _pydicom_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _utf8_instance() -> bytes:
    ds = pydicom.dcmread(io.BytesIO(ct_study(Patient(), count=1)[0]))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Jürgen"
    ds.StudyDescription = "Thorax ohne Kontrastmittel, Größe"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("source", ["ct", "planted", "utf8"])
def test_fast_writer_gives_the_same_bytes_as_pydicom(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {
        "ct": lambda: ct_study(Patient(), count=1)[0],
        "planted": lambda: planted_instance(Patient()).data,
        "utf8": _utf8_instance,
    }[source]()
    calls: list[bool] = []

    def spy(ds: Dataset, extra: dict[int, bytes] | None = None) -> bytes | None:
        fast = part10_bytes(ds, extra)
        calls.append(fast is not None)
        return fast

    monkeypatch.setattr(engine_module, "part10_bytes", spy)
    fast = Engine(KEY).deidentify(data).data
    monkeypatch.setattr(engine_module, "part10_bytes", lambda ds, extra=None: None)
    slow = Engine(KEY).deidentify(data).data
    assert calls == [True]
    assert fast == slow
    assert pydicom.dcmread(io.BytesIO(fast)).DeidentificationMethodCodeSequence[0].CodeValue


def test_declines_implicit_vr_and_changed_character_set() -> None:
    ds = pydicom.dcmread(io.BytesIO(ct_study(Patient(), count=1)[0]))
    ds.SpecificCharacterSet = "ISO_IR 192"
    assert part10_bytes(ds) is None
    buf = io.BytesIO()
    ds = pydicom.dcmread(io.BytesIO(ct_study(Patient(), count=1)[0]))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(buf, enforce_file_format=True)
    assert part10_bytes(pydicom.dcmread(io.BytesIO(buf.getvalue()))) is None


def test_declines_a_deflated_transfer_syntax() -> None:
    """A deflated dataset reads as explicit VR little endian, but must be written deflated."""
    ds = pydicom.dcmread(io.BytesIO(ct_study(Patient(), count=1, size=8)[0]))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert part10_bytes(pydicom.dcmread(io.BytesIO(buf.getvalue()))) is None


@pytest.mark.parametrize(
    "names",
    [
        ["Quixote^Alonso^^Don"],  # one group, plain ASCII: the fast path
        ["Yamada^Tarou=山田^太郎=やまだ^たろう"],  # three groups: pydicom writes it
        ["Panza^Sancho", "Panza^Teresa"],  # multi-valued: pydicom writes it
        [""],
    ],
)
def test_person_names_give_the_same_bytes_as_pydicom(names: list[str]) -> None:
    ds = pydicom.dcmread(io.BytesIO(ct_study(Patient(), count=1, size=8)[0]))
    ds.SpecificCharacterSet = "ISO_IR 192"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    ds = pydicom.dcmread(io.BytesIO(buf.getvalue()))  # read as UTF-8, then changed
    ds.ReferringPhysicianName = names if len(names) > 1 else names[0]
    ds.PerformingPhysicianName = "Rocinante^"
    assert part10_bytes(ds) == _pydicom_bytes(ds)
