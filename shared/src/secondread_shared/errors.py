"""Errors shared by every service.

A :class:`TransientError` is retried (bounded, with backoff); a :class:`PermanentError` goes to
the dead-letter topic at once, with its message as the reason. Any other exception is treated as
transient until the retry budget is spent.
"""

from __future__ import annotations


class SecondreadError(Exception):
    """Base of every secondread error."""


class TransientError(SecondreadError):
    """A failure that may succeed when tried again (a server down, a timeout)."""


class PermanentError(SecondreadError):
    """A failure that will fail again on retry (bad input, a broken contract)."""


class StorageError(TransientError):
    """The object store failed or timed out."""


class ObjectNotFoundError(PermanentError):
    """An object named by an event does not exist."""


class IntegrityError(PermanentError):
    """Stored bytes do not match the digest an event names."""


class OrthancError(TransientError):
    """Orthanc answered with an error or did not answer in time."""


class OrthancRejectedError(PermanentError):
    """Orthanc refused an object as invalid (HTTP 4xx)."""


class ApiError(PermanentError):
    """A refusal an HTTP API answers with ``status`` and the body of :func:`error_body`."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Unauthenticated(ApiError):
    """No bearer token, or one that does not verify (401)."""

    status = 401
    code = "unauthenticated"


class Forbidden(ApiError):
    """A valid user without the right to this case or action (403, and no data)."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """No such resource for this caller (404)."""

    status = 404
    code = "not_found"


class InvalidInput(ApiError):
    """A request whose content is wrong; the message names what (422)."""

    status = 422
    code = "invalid"


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The one error body of every secondread HTTP API: ``{"error": {"code", "message"}}``.

    ``code`` is stable and machine-readable; ``message`` names what was wrong for a person.
    """
    return {"error": {"code": code, "message": message}}
