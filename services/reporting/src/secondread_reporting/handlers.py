"""reporting's handlers."""

from __future__ import annotations

from secondread_reporting.repository import ReportingRepository
from secondread_shared.events import CaseAssigned, RosterChanged
from secondread_shared.logging import get_logger
from secondread_shared.outbox import capture_trace

log = get_logger(__name__)


async def case_assigned(event: CaseAssigned, repo: ReportingRepository) -> None:
    """Put the case on its reader's worklist, remembering the case's trace for the sign step."""
    await repo.upsert_assignment(event, capture_trace())
    log.info("case_on_worklist", radiologist=event.radiologist_id)


async def roster_changed(event: RosterChanged, repo: ReportingRepository) -> None:
    """Every reader of an imported roster gets a signing key now (stored encrypted), so that its
    public half is listed before their first report."""
    for reader in event.readers:
        await repo.signing_key(reader)
    log.info("signing_keys_ready", readers=len(event.readers))
