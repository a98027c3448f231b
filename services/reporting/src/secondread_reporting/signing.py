"""The signed report's canonical form and its Ed25519 signature (RFC 8032).

The canonical form is the JSON Canonicalization Scheme (RFC 8785, the ``rfc8785`` package):
keys sorted by UTF-16 code units, no insignificant whitespace, numbers in ECMAScript form, UTF-8.
The signature covers exactly those bytes, so anyone can check a report with the published public
key and any RFC 8785 implementation. A signed report never changes.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The RFC 8785 canonical form of a JSON document."""
    return rfc8785.dumps(document)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def public_raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable id of a public key: sha256 of its raw bytes, 16 hex digits."""
    return hashlib.sha256(public_raw(public)).hexdigest()[:16]


def fingerprint(public: Ed25519PublicKey) -> str:
    """The whole sha256 of the raw public key, in groups of four hex digits (for print)."""
    digest = hashlib.sha256(public_raw(public)).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def sign(private: Ed25519PrivateKey, data: bytes) -> str:
    """Base64 Ed25519 signature of ``data``."""
    return base64.b64encode(private.sign(data)).decode()


def verify(public: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is a valid signature of ``data`` under ``public``."""
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_document(document: dict[str, Any], signature_b64: str, public_b64: str) -> bool:
    """Check a report document (parsed JSON) against a signature and a base64 raw public key:
    what ``secondread verify --file`` and any physician's own script do."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
    except ValueError:
        return False
    return verify(public, canonical_bytes(document), signature_b64)


def signature_file(report_id: str, kid: str, signature: str, canonical: bytes) -> dict[str, str]:
    """``report.sig.json``: what ``secondread verify --file`` checks a report against."""
    return {
        "report_id": report_id,
        "algorithm": ALGORITHM,
        "key_id": kid,
        "signature": signature,
        "sha256": sha256_hex(canonical),
        "canonicalization": "RFC 8785",
    }
