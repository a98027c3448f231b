import base64
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from secondread_reporting.signing import (
    canonical_bytes,
    fingerprint,
    key_id,
    public_raw,
    sign,
    verify,
    verify_document,
)


def test_canonical_form_is_rfc8785() -> None:
    a = canonical_bytes({"b": 1, "a": "é", "c": [1.0, 1e21, None, True]})
    assert a == canonical_bytes({"c": [1.0, 1e21, None, True], "a": "é", "b": 1})
    assert a == '{"a":"é","b":1,"c":[1,1e+21,null,true]}'.encode()
    # keys sort by UTF-16 code units (RFC 8785, 3.2.3): U+20AC before U+1F600
    assert canonical_bytes({"\U0001f600": 1, "\u20ac": 2}) == '{"€":2,"😀":1}'.encode()


def test_signature_verifies_and_detects_tampering() -> None:
    key = Ed25519PrivateKey.generate()
    doc = {"findings": "8 mm nodule", "assessment": {"summary": "Upgraded"}}
    sig = sign(key, canonical_bytes(doc))
    public_b64 = base64.b64encode(public_raw(key.public_key())).decode()
    assert verify(key.public_key(), canonical_bytes(doc), sig)
    # any key order and whitespace of the same JSON verifies: the check is on the canonical form
    assert verify_document(json.loads(json.dumps(doc, indent=2)), sig, public_b64)
    assert not verify_document({**doc, "findings": "No nodule."}, sig, public_b64)
    other = base64.b64encode(public_raw(Ed25519PrivateKey.generate().public_key())).decode()
    assert not verify_document(doc, sig, other)
    assert not verify_document(doc, "not base64!", public_b64)
    assert len(key_id(key.public_key())) == 16
    assert len(fingerprint(key.public_key()).replace(" ", "")) == 64
