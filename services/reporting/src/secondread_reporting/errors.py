"""reporting's refusals and failures.

Each :class:`ApiError` carries a stable ``code``, an HTTP status and a message naming what is
wrong; the HTTP layer answers it with the body every secondread API uses (ingest's too):
``{"error": {"code", "message"}}`` (:func:`secondread_shared.errors.error_body`).
"""

from __future__ import annotations

from secondread_shared.errors import ApiError as ApiError
from secondread_shared.errors import Forbidden as Forbidden
from secondread_shared.errors import InvalidInput as InvalidInput
from secondread_shared.errors import NotFound as NotFound
from secondread_shared.errors import TransientError
from secondread_shared.errors import Unauthenticated as Unauthenticated


class PreconditionFailed(ApiError):
    """The draft moved on since the version the client names (412)."""

    status = 412
    code = "stale_draft"


class PreconditionRequired(ApiError):
    """A write that must name the version it changes (428)."""

    status = 428
    code = "if_match_required"


class IncompleteReport(ApiError):
    """The draft cannot be signed yet; ``missing`` names each gap (422)."""

    status = 422
    code = "incomplete_report"

    def __init__(self, missing: list[str]) -> None:
        super().__init__("the report cannot be signed yet; missing: " + "; ".join(missing))
        self.missing = missing


class Conflict(ApiError):
    status = 409
    code = "conflict"


class ArchiveUnavailable(TransientError):
    """The archive did not answer; nothing was signed (503, try again)."""
