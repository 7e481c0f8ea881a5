"""Waiting in a test for something to become true, with a deadline, instead of a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(condition: Callable[[], object], *, within: float = 5.0) -> bool:
    """Check `condition` every few milliseconds until it holds or `within` seconds have passed,
    and say whether it held: `assert await eventually(...)`. A fast machine waits no longer than
    it must, and a slow one gets the whole deadline rather than a guess at how long is enough."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True
