"""Operator views over Kafka, as the CLI and the end-to-end tests name them: the shared
package's readers (:mod:`secondread_shared.records`, :mod:`secondread_shared.casestatus`,
:mod:`secondread_shared.deadletters`), which routing's operations page uses too."""

from __future__ import annotations

from secondread_shared.casestatus import (
    AUTOMATED_STATES,
    CaseStatus,
    case_states,
    status_events,
    stuck,
)
from secondread_shared.deadletters import DLQ_TOPICS, dead_letters, replay
from secondread_shared.records import Record, read_all

__all__ = [
    "AUTOMATED_STATES",
    "DLQ_TOPICS",
    "CaseStatus",
    "Record",
    "case_states",
    "dead_letters",
    "read_all",
    "replay",
    "status_events",
    "stuck",
]
