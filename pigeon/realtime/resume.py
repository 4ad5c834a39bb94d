"""A client's catch-up: what it missed since a message id, capped, before live events resume.

Live frames are parked while the replay runs (`Connection.begin_replay`) and released after it,
so nothing is out of order, missed or sent twice. One replay gives at most
`ws_resume_max_messages`; when more are missing it ends with `resume.truncated`
(`{last_message_id}`: the last message it covered), and the client pages the rest over HTTP
(`GET /conversations/{id}/messages?after_id=`) or resumes again from there.
"""

from __future__ import annotations

import asyncio
import logging

from pigeon.core.errors import log_failure
from pigeon.messaging import catchup, request_state
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import MessageNew, RequestMessageNew
from pigeon.realtime.connection import Close, Connection, Frame
from pigeon.realtime.frames import ResumeTruncated, ResumeTruncatedData

log = logging.getLogger("pigeon.realtime")


async def replay(ctx: Ctx, conn: Connection, after: int, *, parked: bool = False) -> None:
    """Replay what the client missed, up to the cap, then release the live events that arrived
    meanwhile. Past the cap, `resume.truncated` says where the replay stopped."""
    if not parked:
        conn.begin_replay()
    try:
        hidden = await messaging.blocked_senders(ctx)
        async with ctx.dbs.messaging.read() as session:  # flagged as they are live
            requested = await request_state.requests_of(session, ctx.viewer.id)
        last, left = after, ctx.settings.ws_resume_max_messages
        while True:
            limit = min(catchup.PAGE, left + 1)  # one more than allowed: are more missing?
            batch = await catchup.messages_after(ctx, last, limit=limit, hidden=hidden)
            for message in batch[:left]:
                event = (
                    RequestMessageNew.of(message)
                    if message.conversation_id in requested
                    else MessageNew(data=message, id=message.id)
                )
                text = event.encode().decode()
                if not await conn.put(Frame("message.new", text, message.id)):
                    return
                last = message.id
            if len(batch) > left:
                data = ResumeTruncatedData(last_message_id=last)
                text = ResumeTruncated(data=data).encode().decode()
                if not await conn.put(Frame("resume.truncated", text)):
                    return
                break
            if len(batch) < limit:
                break
            left -= len(batch)
        await conn.end_replay()
    except asyncio.CancelledError:
        raise
    except Exception:
        log_failure(log, "catch-up failed")
        conn.close(*Close.RESUME)
