"""The operator API's refusals: :class:`~secondread_shared.errors.ApiError` subclasses, each
answered with ``{"error": {"code", "message"}}`` and its status."""

from __future__ import annotations

from secondread_shared.errors import ApiError, TransientError
from secondread_shared.errors import Forbidden as Forbidden
from secondread_shared.errors import InvalidInput as InvalidInput
from secondread_shared.errors import NotFound as NotFound
from secondread_shared.errors import Unauthenticated as Unauthenticated


class PageUnavailable(ApiError):
    """An asset of the page is missing from this installation (``make up`` installs it)."""

    status = 503
    code = "page_unavailable"


class BusUnavailable(TransientError):
    """Kafka did not answer: nothing was replayed (or the replay was not confirmed), try again."""
