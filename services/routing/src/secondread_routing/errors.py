"""routing's exceptions.

A case nobody can read yet is not an error: it waits as ``unassigned`` (service.py). A stale
accept or decline is not one either: it is logged and changes nothing. What is left is bad
configuration, refused with a message naming what is wrong, and the transient failures of the
database and the archive, which come from the common package
(:class:`secondread_shared.db.DatabaseError`, :class:`secondread_shared.errors.OrthancError`) and
are retried.
"""

from __future__ import annotations


class RulesError(ValueError):
    """The rules file is missing or invalid; the message names the rule and the field.

    Raised at start-up (routing does not start) and by ``secondread classify``.
    """


class RosterError(ValueError):
    """A roster document is invalid; :attr:`problems` names each reader and field at fault.

    Raised by ``secondread roster import`` before anything is changed.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
