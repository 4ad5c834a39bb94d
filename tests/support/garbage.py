"""What a piece of work leaves for the cycle collector: things only it can free, which pile
up (and hold memory) between collections when the work runs all day long."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable


async def left_in_cycles(work: Callable[[], Awaitable[object]], times: int = 20) -> list[str]:
    """The SQLAlchemy objects that `times` runs of `work` (after a first, which compiles and
    caches what it needs) left in reference cycles, by type name."""
    await work()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(times):
            await work()
        gc.collect()
        return [type(o).__name__ for o in gc.garbage if type(o).__module__.startswith("sqlalchemy")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
