"""Deliveries: what is sent to whom, and when a failed one is tried again. Pure, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from secondread_shared.events import ReportSigned

Role = Literal["physician", "patient"]
CHANNELS: tuple[str, ...] = ("email", "webhook", "fhir", "dicom")
"""The channels this notify delivers over (a worker claims only these)."""


class DeliveryStatus(StrEnum):
    """``deliveries.status`` in notify's schema."""

    PENDING = "pending"
    """Waiting for its (next) attempt at ``next_attempt_at``."""
    SENDING = "sending"
    """Claimed by a worker until ``claimed_until``; its idempotency key is already written. A
    claim that expires (the worker died between send and mark) is claimed again and sent once
    more with the same key."""
    DELIVERED = "delivered"
    FAILED = "failed"
    """Every attempt failed; ``notification.failed`` was published."""


@dataclass(frozen=True)
class Recipient:
    role: str
    """``physician`` or ``patient`` (:data:`Role`)."""
    name: str
    address: str
    channel: str = "email"


@dataclass(frozen=True)
class Delivery:
    """One claimed delivery: a report version to one recipient over one channel."""

    delivery_id: str
    case_id: str
    report_id: str
    channel: str
    role: str
    attempts: int
    """Attempts so far, this one included."""
    idempotency_key: str
    event: ReportSigned


def idempotency_key(report_id: str, channel: str, role: str) -> str:
    """The same for every attempt of one delivery (and so the same Message-ID)."""
    return f"{report_id}.{channel}.{role}"


def backoff_s(
    attempts: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter: ``base * 2**(attempts-1)``, capped, times 0.5 to 1.5."""
    jitter = (rng or random.Random()).uniform(0.5, 1.5)
    growth = 2.0 ** max(0, attempts - 1)
    return float(min(cap_s, base_s * growth) * jitter)
