import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from secondread_reporting.signing import ReportDraft, canonical_bytes, key_id, sign, verify


def draft() -> ReportDraft:
    return ReportDraft.model_validate(
        {
            "findings": "8 mm solid nodule, right upper lobe.",
            "statements": [{"statement": "Nodule RUL", "verdict": "refined", "comment": "8 mm"}],
            "assessment": {"changes": ["severity"], "summary": "Upgraded to Lung-RADS 4A"},
            "recommendations": ["PET-CT"],
            "credentials": "MD",
        }
    )


def test_canonical_form_is_order_independent_and_compact() -> None:
    a = canonical_bytes({"b": 1, "a": "é"})
    assert a == canonical_bytes({"a": "é", "b": 1})
    assert a == '{"a":"é","b":1}'.encode()


def test_signature_verifies_and_detects_tampering() -> None:
    key = Ed25519PrivateKey.generate()
    data = canonical_bytes(draft().model_dump(mode="json"))
    sig = sign(key, data)
    assert verify(key.public_key(), data, sig)
    tampered = json.loads(data)
    tampered["findings"] = "No nodule."
    assert not verify(key.public_key(), canonical_bytes(tampered), sig)
    assert not verify(Ed25519PrivateKey.generate().public_key(), data, sig)
    assert len(key_id(key.public_key())) == 16


def test_draft_refuses_unknown_verdict() -> None:
    raw = draft().model_dump()
    raw["statements"][0]["verdict"] = "maybe"
    with pytest.raises(ValidationError):
        ReportDraft.model_validate(raw)
