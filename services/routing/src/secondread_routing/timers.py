"""routing's background loop: accept timeouts and waiting cases, on every replica.

Each replica polls; the timers themselves are rows in PostgreSQL taken with
``FOR UPDATE SKIP LOCKED``, so a timer fires in one transaction only, and one that fired is
closed. A failing round is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from secondread_routing.service import RoutingService
from secondread_shared.logging import get_logger

log = get_logger(__name__)


class TimerLoop:
    def __init__(
        self,
        service: RoutingService,
        wake: Callable[[], None],
        *,
        poll_s: float,
        retry_s: float,
    ) -> None:
        self.service = service
        self.wake = wake
        self.poll_s = poll_s
        self.retry_s = retry_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="routing-timers")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        last_retry = time.monotonic()
        while True:
            try:
                fired = await self.service.fire_timers()
                retried = 0
                if time.monotonic() - last_retry >= self.retry_s:
                    last_retry = time.monotonic()
                    retried = await self.service.retry_unassigned()
                if fired or retried:
                    self.wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("timer_round_failed", error=type(exc).__name__)
            await asyncio.sleep(self.poll_s)
