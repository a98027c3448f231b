"""The structured report, its canonical form and its Ed25519 signature (RFC 8032).

The canonical form is the report's JSON with sorted keys, no insignificant whitespace and UTF-8
text (the JSON Canonicalization Scheme subset that our field types need). The signature covers
exactly those bytes; a signed report never changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field


class StatementReview(BaseModel):
    """One statement of the original report and the reader's verdict on it."""

    model_config = ConfigDict(extra="forbid")

    statement: str = Field(min_length=1)
    verdict: Literal["confirmed", "refined", "revised"]
    comment: str = ""


class Assessment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: list[Literal["diagnosis", "severity", "staging"]] = Field(default_factory=list)
    """Empty when the second opinion changes none of them."""
    summary: str = Field(min_length=1)


class ReportDraft(BaseModel):
    """What a radiologist submits to sign."""

    model_config = ConfigDict(extra="forbid")

    findings: str = Field(min_length=1)
    statements: list[StatementReview] = Field(default_factory=list)
    assessment: Assessment
    recommendations: list[str] = Field(default_factory=list)
    credentials: str = Field(min_length=1, description="e.g. 'MD, FRCR; board-certified'")


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The canonical form of a JSON document."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    ).encode("utf-8")


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable id of a public key: sha256 of its raw bytes, 16 hex digits."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(private: Ed25519PrivateKey, data: bytes) -> str:
    """Base64 Ed25519 signature of ``data``."""
    return base64.b64encode(private.sign(data)).decode()


def verify(public: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is a valid signature of ``data`` under ``public``."""
    try:
        public.verify(base64.b64decode(signature_b64), data)
    except (InvalidSignature, ValueError):
        return False
    return True
