"""Errors of the de-identification domain."""

from __future__ import annotations

from secondread_shared.errors import PermanentError


class InvalidInstanceError(PermanentError):
    """The input is not a DICOM instance the engine can de-identify (names what is wrong)."""


class VaultRecordNotFoundError(PermanentError):
    """No re-identification record exists for the case and pseudonym asked for."""
