import io

import pydicom

from secondread_deidentify.engine import deidentify
from tests.synthetic import Patient, ct_study, planted

KEY = b"0123456789abcdef" * 2


def test_no_planted_identifier_survives_and_pixels_are_untouched() -> None:
    patient = Patient()
    [original] = ct_study(patient, count=1)
    result = deidentify(original, KEY)
    for value in planted(patient):
        assert value.encode() not in result.data, value
    before = pydicom.dcmread(io.BytesIO(original))
    after = pydicom.dcmread(io.BytesIO(result.data))
    assert after.PixelData == before.PixelData
    assert after.PatientIdentityRemoved == "YES"
    assert after.PatientID == result.pseudonym
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert after.SOPInstanceUID != before.SOPInstanceUID
    assert after.SOPClassUID == before.SOPClassUID
    assert after.StudyDate != before.StudyDate


def test_uids_consistent_within_a_study_and_pseudonym_stable() -> None:
    patient = Patient()
    results = [deidentify(d, KEY) for d in ct_study(patient, count=3)]
    assert len({r.study_instance_uid for r in results}) == 1
    assert len({r.sop_instance_uid for r in results}) == 3
    assert len({r.pseudonym for r in results}) == 1
    again = deidentify(ct_study(patient, count=1)[0], KEY)
    assert again.pseudonym == results[0].pseudonym
    assert again.study_instance_uid == results[0].study_instance_uid


def test_two_patients_never_share_a_pseudonym() -> None:
    a = deidentify(ct_study(Patient(patient_id="A-1"), count=1)[0], KEY)
    b = deidentify(ct_study(Patient(patient_id="B-2"), count=1)[0], KEY)
    assert a.pseudonym != b.pseudonym


def test_burned_in_annotation_is_quarantined() -> None:
    ds = pydicom.dcmread(io.BytesIO(ct_study(Patient(), count=1)[0]))
    ds.BurnedInAnnotation = "YES"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert deidentify(buf.getvalue(), KEY).quarantine_reason == "BurnedInAnnotation is YES"
