"""routing settings (``SECONDREAD_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from secondread_shared.settings import PagesSettings


class RoutingSettings(PagesSettings):
    service_name: str = "routing"
    http_port: int = 8003
    db_user: str = "routing"
    db_password: SecretStr = SecretStr("routing-local")

    routing_rules: Path | None = None
    """``SECONDREAD_ROUTING_RULES``: a rules file replacing the default (docs/routing.md)."""
    roster_path: Path = Path("deploy/roster.toml")
    """Imported at start-up when the roster in the database is empty (a first start)."""
    capacity_policy: Literal["strict", "soft"] = "strict"
    routine_due_hours: float = Field(default=72, gt=0)
    urgent_due_hours: float = Field(default=24, gt=0)
    routine_accept_minutes: float = Field(default=240, gt=0)
    urgent_accept_minutes: float = Field(default=30, gt=0)
    priors_lookback_days: int = Field(default=3650, ge=1)
    timer_poll_seconds: float = Field(default=2.0, gt=0)
    unassigned_retry_seconds: float = Field(default=60.0, gt=0)

    # The operations page (/ops/) and its API (/v1/ops/...): bearer tokens of the OpenID Connect
    # provider with the operator role (docs/web.md, "Operations page").
    ops_stuck_minutes: float = Field(default=15.0, gt=0)
    ops_at_risk_hours: float = Field(default=6.0, gt=0)
    ops_refresh_seconds: float = Field(default=10.0, ge=2)
