"""routing's subscribers: parse (FastStream validates the event), call the use case. The use
cases publish through the outbox, which the relay drains once their transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from secondread_routing.service import RoutingService
from secondread_shared.events import (
    CaseAccepted,
    CaseDeclined,
    CaseDeidentified,
    ReportSigned,
    RosterChanged,
)


@dataclass
class RoutingDeps:
    service: RoutingService
    wake: Callable[[], None]
    """Wakes the outbox relay: the events of a committed use case go out at once."""


async def case_deidentified(event: CaseDeidentified, deps: RoutingDeps) -> None:
    await deps.service.route_case(event)
    deps.wake()


async def case_accepted(event: CaseAccepted, deps: RoutingDeps) -> None:
    await deps.service.case_accepted(event)


async def case_declined(event: CaseDeclined, deps: RoutingDeps) -> None:
    await deps.service.case_declined(event)
    deps.wake()


async def report_signed(event: ReportSigned, deps: RoutingDeps) -> None:
    await deps.service.report_signed(event)
    deps.wake()


async def roster_changed(event: RosterChanged, deps: RoutingDeps) -> None:
    await deps.service.retry_unassigned()
    deps.wake()
