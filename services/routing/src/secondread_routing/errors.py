"""routing's exceptions.

A case nobody can read yet is not an error: it waits as ``unassigned`` (see service.py). What
is left are bad configuration, refused at start-up or by ``secondread roster import`` with a
message naming what is wrong, and the transient failures of the database and the archive, which
come from the common package (:class:`secondread_shared.db.DatabaseError`,
:class:`secondread_shared.errors.OrthancError`) and are retried.
"""

from __future__ import annotations

from secondread_routing.roster import RosterError
from secondread_routing.rules import RulesError
from secondread_shared.errors import PermanentError


class UnknownCase(PermanentError):
    """An accept or decline names a case routing never assigned (dead-lettered with the reason)."""


__all__ = ["RosterError", "RulesError", "UnknownCase"]
