"""ingest's refusals and failures: each carries a stable code and a message naming what is wrong."""

from __future__ import annotations

from secondread_shared.errors import PermanentError, TransientError


class InputRejected(PermanentError):
    """Bad input from a submitter. ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class ReportExtractionError(PermanentError):
    """A report instance (SR or encapsulated PDF) whose text cannot be read."""


class SpoolError(TransientError):
    """The C-STORE write-ahead spool could not write or read an entry."""


class PacsError(TransientError):
    """The hospital PACS refused or failed a query or retrieve (the message names the step)."""


# DICOM status codes for refusals (PS3.4 Table B.2-1, used by C-STORE and, as Failure Reason,
# by the STOW-RS response, PS3.18 10.5.3). 0xCxxx is "Error: Cannot understand", 0xA9xx
# "Error: Data Set does not match SOP Class", 0xA7xx "Refused: Out of Resources".
SUCCESS = 0x0000
STATUS_BY_REJECTION: dict[str, int] = {
    "not_dicom": 0xC000,
    "truncated": 0xC001,
    "missing_uid": 0xC002,
    "study_mismatch": 0xC003,
    "too_deep": 0xC004,
    "bad_charset": 0xC005,
    "bad_uid": 0xC006,
    "too_many_items": 0xC007,
    "meta_mismatch": 0xA900,
    "too_large": 0xA700,
}
OUT_OF_RESOURCES = 0xA701
"""The instance could not be made durable now (spool or store failing): the sender may retry."""
PROCESSING_FAILURE = 0x0110
