"""notify's errors: transient (retried), permanent (dead-lettered with the reason)."""

from __future__ import annotations

from secondread_shared.errors import TransientError


class ContactsUnknown(TransientError):
    """The report arrived before the case's contacts (retried, then dead-lettered)."""
