"""What one group message costs the processes that deliver it: broker publishes, and the time
a process spends on the envelope, for a process that holds none of the recipients and for one
that holds all of them.

    .venv/bin/python benchmarks/fanout.py [--members 100] [--events 2000]

Runs in one process, with stand-in connections that only count what they are handed; the
figures are medians of five repetitions, in microseconds per event.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from typing import Any

from pigeon.core.events import EVENTS_CHANNEL, InProcessBroker, Publisher
from pigeon.messaging.events import MessageNew
from pigeon.messaging.schemas import MessageOut
from pigeon.realtime.hub import Hub


class Counted:
    """A stand-in connection: counts frames and closes never."""

    def __init__(self, user_id: int) -> None:
        self.user_id, self.frames = user_id, 0

    def offer(self, frame: Any) -> None:
        self.frames += 1


def message(i: int) -> MessageOut:
    return MessageOut.model_construct(
        id=i,
        conversation_id=1,
        sender_id=1,
        body="See you at the book club on Thursday, bring the Le Guin!",
        created_at=dt.datetime.now(dt.UTC),
        edited_at=None,
        deleted=False,
        reply_to_id=None,
        attachments=[],
        reactions=[],
        client_msg_id=f"c-{i}",
    )


def run(members: int, events: int, hold_all: bool) -> tuple[float, int]:
    hub = Hub.__new__(Hub)
    hub.by_user = {}
    hub._latest_seen = 0
    if hold_all:
        hub.by_user = {uid: {Counted(uid)} for uid in range(1, members + 1)}  # type: ignore[misc]
    broker = InProcessBroker()
    published = 0

    async def listen(channel: str, payload: bytes) -> None:
        nonlocal published
        published += 1
        if channel == EVENTS_CHANNEL:
            hub.deliver(payload)

    broker.add_listener(listen)
    publisher = Publisher(broker, time.time)
    users = list(range(1, members + 1))
    unread = {uid: 3 for uid in users[1:]}
    import asyncio

    async def go() -> float:
        start = time.perf_counter()
        for i in range(1, events + 1):
            await publisher.events([(MessageNew(data=message(i), id=i), users, unread)])
        return time.perf_counter() - start

    elapsed = asyncio.run(go())
    return elapsed / events * 1e6, published // events


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--events", type=int, default=2000)
    args = ap.parse_args()
    for hold_all in (False, True):
        samples = [run(args.members, args.events, hold_all) for _ in range(5)]
        us = statistics.median(s[0] for s in samples)
        who = f"holds all {args.members}" if hold_all else "holds none"
        print(
            f"group of {args.members}, process {who:<14}: {samples[0][1]} publish per message, "
            f"{us:7.1f} us per message (publish + envelope + hand-off)"
        )


if __name__ == "__main__":
    main()
