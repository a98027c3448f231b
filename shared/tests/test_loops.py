"""The drain loop at stop: the pass under way finishes and what is due is drained, within the
grace; a pass stuck past the grace is cancelled."""

from __future__ import annotations

import asyncio

from secondread_shared.loops import DrainLoop


async def test_stop_lets_the_pass_under_way_finish_and_drains_what_is_due() -> None:
    queue = [1, 2, 3]
    done: list[int] = []
    started = asyncio.Event()

    async def one() -> int:
        if not queue:
            return 0
        started.set()
        await asyncio.sleep(0.1)
        done.append(queue.pop(0))
        return 1

    loop = DrainLoop(one, poll_s=60, name="t", event="t_failed", grace_s=5)
    await loop.start()
    await started.wait()
    await loop.stop()
    assert done == [1, 2, 3]  # nothing cut in the middle, nothing left behind


async def test_a_pass_stuck_past_the_grace_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def stuck() -> int:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    loop = DrainLoop(stuck, poll_s=60, name="t", event="t_failed", grace_s=0.2)
    await loop.start()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(loop.stop(), timeout=2)
    assert cancelled.is_set()
