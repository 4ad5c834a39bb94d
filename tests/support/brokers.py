"""Redis brokers in tests: cut one's subscription at the server, as a network blip or a Redis
restart would, and wait until it has noticed and subscribed again."""

from __future__ import annotations

import asyncio
from typing import Any


async def cut_subscription(broker: Any, *, by: Any = None) -> None:
    """Kill `broker`'s subscribing connection (through `by`'s client, or its own) and wait
    for its gap listeners to have run."""
    healed = asyncio.Event()

    async def on_gap() -> None:
        healed.set()

    broker.add_gap_listener(on_gap)  # runs after the listeners added before it
    await broker._subscribed.wait()
    clients = await (by or broker).redis.client_list()
    subscriber = [c for c in clients if c.get("name") == broker.name and int(c.get("sub", 0)) > 0]
    assert len(subscriber) == 1
    await (by or broker).redis.client_kill_filter(_id=subscriber[0]["id"])
    await asyncio.wait_for(healed.wait(), 10)
