import io
import zipfile

import pydicom
import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from secondread_ingest.errors import InputRejected
from secondread_ingest.intake import inspect_instance, iter_zip
from tests.synthetic import ROOT, Patient, ct_instance, ct_study, zip_bytes


def good() -> bytes:
    return ct_study(Patient(), count=1)[0]


def test_valid_instance_gives_its_uids() -> None:
    study_uid, series_uid = generate_uid(prefix=ROOT), generate_uid(prefix=ROOT)
    patient = Patient(patient_id="MRN-UIDS-1")
    data = ct_instance(patient, study_uid=study_uid, series_uid=series_uid, index=3)
    info = inspect_instance(data, "a.dcm")
    assert info.study_instance_uid == study_uid
    assert info.series_instance_uid == series_uid
    # tests.synthetic derives each SOP Instance UID from its series and index
    assert info.sop_instance_uid == generate_uid(prefix=ROOT, entropy_srcs=[series_uid, "3"])
    assert info.sop_class_uid == CTImageStorage
    assert info.transfer_syntax_uid == ExplicitVRLittleEndian
    assert info.patient_id == "MRN-UIDS-1"
    assert info.report_text is None and info.report_error is None


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b"hello world" * 20, "not_dicom"),
        (lambda b: b[: len(b) // 2], "truncated"),
    ],
)
def test_bad_bytes_are_refused_with_a_code(mutate, code) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputRejected) as exc:
        inspect_instance(mutate(good()), "x.dcm")
    assert exc.value.code == code
    assert "x.dcm" in exc.value.message


def test_missing_uid_and_meta_mismatch() -> None:
    ds = pydicom.dcmread(io.BytesIO(good()))
    del ds.StudyInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf)
    with pytest.raises(InputRejected, match="StudyInstanceUID") as exc:
        inspect_instance(buf.getvalue(), "m.dcm")
    assert exc.value.code == "missing_uid"
    ds = pydicom.dcmread(io.BytesIO(good()))
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    buf = io.BytesIO()
    ds.save_as(buf)
    with pytest.raises(InputRejected) as exc:
        inspect_instance(buf.getvalue(), "m.dcm")
    assert exc.value.code == "meta_mismatch"


def _iter(data: bytes) -> list[tuple[str, bytes]]:
    return list(iter_zip(io.BytesIO(data), "u.zip", max_members=10, max_ratio=50, max_total=10**7))


def test_zip_members_are_yielded_and_dicomdir_skipped() -> None:
    members = _iter(zip_bytes({"a/1.dcm": good(), "DICOMDIR": b"index"}))
    assert [m[0] for m in members] == ["a/1.dcm"]


def test_zip_traversal_and_bomb_are_refused() -> None:
    with pytest.raises(InputRejected) as exc:
        _iter(zip_bytes({"../evil.dcm": good()}))
    assert exc.value.code == "zip_traversal"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.dcm", b"\0" * 5_000_000)
    with pytest.raises(InputRejected) as exc:
        _iter(buf.getvalue())
    assert exc.value.code == "zip_bomb"


def test_patient_delivery_needs_its_own_consent_and_an_address() -> None:
    from pydantic import ValidationError

    from secondread_ingest.intake import IntakeForm

    base = {"clinical_question": "q?", "consent": True,
            "referring_physician": {"name": "Dr R", "email": "r@example.org"}}  # fmt: skip
    assert IntakeForm.model_validate(base).patient_delivery_consent is False
    both = IntakeForm.model_validate(
        {**base, "patient_email": "p@example.org", "patient_delivery_consent": True}
    )
    assert both.patient_delivery_consent
    with pytest.raises(ValidationError, match="patient_delivery_consent needs patient_email"):
        IntakeForm.model_validate({**base, "patient_delivery_consent": True})


def test_a_nul_character_anywhere_in_the_intake_is_refused_naming_the_field() -> None:
    """PostgreSQL's jsonb and text hold no NUL: it was a 500 at the insert (found by
    Schemathesis); now it is a refusal naming the field."""
    from pydantic import ValidationError

    from secondread_ingest.intake import IntakeForm

    base = {"clinical_question": "q?", "consent": True,
            "referring_physician": {"name": "Dr R", "email": "r@example.org"}}  # fmt: skip
    for field, value in (
        ("clinical_question", "a\0b"),
        ("referring_physician", {"name": "Dr\0R", "email": "r@example.org"}),
        ("study_instance_uids", ["1.2\0"]),
    ):
        with pytest.raises(ValidationError, match="NUL character") as exc:
            IntakeForm.model_validate({**base, field: value})
        assert exc.value.errors()[0]["loc"][0] == field


def test_an_intake_that_is_not_even_text_is_refused_as_not_json() -> None:
    """Bytes that are no UTF-8 made json.loads raise UnicodeDecodeError, a 500 (Schemathesis)."""
    from secondread_ingest.api import _parse_intake

    with pytest.raises(InputRejected, match="intake is not JSON: not UTF-8 text") as exc:
        _parse_intake(b"\x80\x81^\xfazQ")
    assert exc.value.code == "bad_intake"
