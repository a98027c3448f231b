"""Keyed, deterministic pseudonyms (DICOM PS3.15 Annex E, "Basic Application Level
Confidentiality Profile": replacement of identifiers, and the Retain Longitudinal Temporal
Information with Modified Dates option).

Without the key nobody can reverse or recompute a mapping; with it, the same patient always gets
the same pseudonym, UIDs remap the same way on every replica, and dates shift by the same amount.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

PSEUDONYM_PREFIX = "SR"
MAX_SHIFT_DAYS = 365


def _mac(key: bytes, *parts: str) -> bytes:
    msg = "\x1f".join(parts).encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).digest()


def patient_pseudonym(key: bytes, issuer: str, patient_id: str) -> str:
    """PatientID replacement: ``SR`` + 24 hex digits of HMAC-SHA256(key, issuer, id)."""
    return PSEUDONYM_PREFIX + _mac(key, "patient", issuer.strip(), patient_id.strip()).hex()[:24]


def pseudonym_name(pseudonym: str) -> str:
    """PatientName replacement derived from the pseudonym (a valid PN: family^given)."""
    return f"{pseudonym}^ANON"


def remap_uid(key: bytes, uid: str) -> str:
    """Map ``uid`` to a new UID under ``2.25`` (PS3.5 B.2, a UUID as an integer).

    The UUID's 122 free bits come from HMAC-SHA256(key, uid). (pydicom's ``generate_uid`` with
    ``prefix=None`` ignores ``entropy_srcs`` and returns a random UUID, so it cannot be used.)
    """
    digest = _mac(key, "uid", uid.strip())[:16]
    return f"2.25.{uuid.UUID(bytes=digest, version=4).int}"


def date_shift_days(key: bytes, pseudonym: str) -> int:
    """The per-patient date shift: between 1 and ``MAX_SHIFT_DAYS`` days into the past."""
    n = int.from_bytes(_mac(key, "date-shift", pseudonym)[:4], "big")
    return -(1 + n % MAX_SHIFT_DAYS)
