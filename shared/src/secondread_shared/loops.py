"""A background loop that works until nothing is left, then waits to be woken or for a poll
interval: the shape of every relay and worker that drains a PostgreSQL queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from secondread_shared.logging import get_logger

log = get_logger(__name__)


class DrainLoop:
    """Runs ``round()`` until it returns 0, then sleeps until :meth:`wake` or ``poll_s``.

    Parameters
    ----------
    round
        One pass over the queue; returns how much it did. An exception ends the pass (logged
        as ``event`` with its class name, never its message: it may name PHI); the next pass
        retries.
    poll_s
        The longest wait between passes (retries that come due, work from other replicas).
    name, event
        The task's name, and the log event of a failed pass.
    """

    def __init__(
        self,
        round: Callable[[], Awaitable[int]],
        *,
        poll_s: float,
        name: str,
        event: str,
        grace_s: float = 10.0,
    ) -> None:
        self.round = round
        self.poll_s = poll_s
        self.name = name
        self.event = event
        self.grace_s = grace_s
        """On :meth:`stop`, how long the loop gets to finish its pass and drain what is due."""
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish the pass under way and drain what is due (within ``grace_s``), then stop; a
        pass still running after the grace is cancelled (each pass is a transaction per item,
        so what it was doing is done again by the next start or another replica)."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=self.grace_s)
        except TimeoutError:
            log.warning("drain_cut_at_stop", loop=self.name, grace_s=self.grace_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        while True:
            try:
                while await self.round():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(self.event, error=type(exc).__name__)
            if self._stopping:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            except TimeoutError:
                pass
            self._wake.clear()
