from secondread_deidentify.pseudonyms import (
    MAX_SHIFT_DAYS,
    date_shift_days,
    patient_pseudonym,
    remap_uid,
)

KEY = b"k" * 32


def test_pseudonym_is_deterministic_and_keyed() -> None:
    a = patient_pseudonym(KEY, "ISSUER", "MRN1")
    assert a == patient_pseudonym(KEY, "ISSUER", "MRN1")
    assert a != patient_pseudonym(b"other-key", "ISSUER", "MRN1")
    assert a != patient_pseudonym(KEY, "OTHER", "MRN1")
    assert a != patient_pseudonym(KEY, "ISSUER", "MRN2")
    assert "MRN1" not in a


def test_uid_remap_is_deterministic_valid_and_keyed() -> None:
    uid = "1.2.3.4.5"
    new = remap_uid(KEY, uid)
    assert new == remap_uid(KEY, uid)
    assert new != remap_uid(b"other", uid)
    assert new.startswith("2.25.") and len(new) <= 64


def test_date_shift_is_per_patient_and_bounded() -> None:
    shifts = {date_shift_days(KEY, f"SR{i}") for i in range(50)}
    assert all(-MAX_SHIFT_DAYS <= s <= -1 for s in shifts)
    assert len(shifts) > 10
    assert date_shift_days(KEY, "SR1") == date_shift_days(KEY, "SR1")
