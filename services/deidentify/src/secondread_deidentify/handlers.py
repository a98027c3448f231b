"""deidentify's handlers: thin functions of (event, dependencies) that call a use case."""

from __future__ import annotations

from secondread_deidentify.service import (
    DeidentifyDeps,
    archive_late_instances,
    deidentify_case,
)
from secondread_shared.events import CaseAmended, CaseReceived

__all__ = ["DeidentifyDeps", "case_amended", "case_received"]


async def case_received(event: CaseReceived, deps: DeidentifyDeps) -> None:
    """``secondread.phi.case.received.v1``: de-identify, archive and announce the case."""
    await deidentify_case(event, deps)


async def case_amended(event: CaseAmended, deps: DeidentifyDeps) -> None:
    """``secondread.phi.case.amended.v1``: archive the late instances beside the study."""
    await archive_late_instances(event, deps)
