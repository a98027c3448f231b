"""ingest's refusals: each carries a stable code and a message naming what is wrong."""

from __future__ import annotations

from secondread_shared.errors import PermanentError


class InputRejected(PermanentError):
    """Bad input from a submitter. ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
