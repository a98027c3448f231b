"""notify's handlers: thin functions of (event, dependencies) that call a use case."""

from __future__ import annotations

from secondread_notify.repository import NotifyRepository
from secondread_notify.service import NotifyDeps, queue_deliveries
from secondread_shared.events import CaseReceived, ReportSigned

__all__ = ["NotifyDeps", "case_received", "report_signed"]


async def case_received(event: CaseReceived, repo: NotifyRepository) -> None:
    """``secondread.phi.case.received.v1``: keep the delivery contacts (never logged); a report
    already signed and waiting for them is queued by the worker."""
    await repo.save_contacts(event)


async def report_signed(event: ReportSigned, deps: NotifyDeps) -> None:
    """``secondread.report.signed.v1``: queue its deliveries (the worker sends them)."""
    await queue_deliveries(event, deps)
