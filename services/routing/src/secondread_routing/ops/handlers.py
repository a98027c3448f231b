"""The operations consumers: every status event into the view, every dead letter's headers into
the index. They read the raw record (the status topic may carry states this version does not
know; a dead letter's payload is not decoded at all)."""

from __future__ import annotations

from secondread_routing.ops.service import OpsService
from secondread_shared import casestatus, deadletters
from secondread_shared.errors import PermanentError
from secondread_shared.records import Record

CASE_STATUS_TYPE = "case.status"


class UnreadableStatus(PermanentError):
    """A record on the status topic that is not a status event (dead-lettered with this)."""


async def status_changed(record: Record, ops: OpsService) -> None:
    kind = casestatus.event_type_of(record.value)
    if kind not in (None, CASE_STATUS_TYPE):
        raise UnreadableStatus(f"event_type {kind!r} on the status topic: case.status expected")
    status = casestatus.of_record(record)
    if status is None:
        raise UnreadableStatus(
            "not a case status event: JSON with a non-empty 'state' and a case id is expected"
        )
    await ops.status_changed(status)


async def dead_lettered(record: Record, ops: OpsService) -> None:
    await ops.dead_lettered(deadletters.letter_of(record))
