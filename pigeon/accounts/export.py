"""A member's data export: their profile, contacts, blocks, conversations and messages.

It holds what the member can see in the product, nothing more: messages inside their retention
window, without those of people they blocked in groups, without deleted ones. The file is JSON;
when messages carry attachments it is a zip of the JSON and the files.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from pigeon import __version__
from pigeon.accounts import service as accounts
from pigeon.accounts.views import user_dict
from pigeon.core.clock import clock
from pigeon.core.db import Databases
from pigeon.core.errors import NotFound
from pigeon.messaging import service as messaging
from pigeon.messaging.service import C, M, P
from pigeon.settings import Settings

FORMAT = "pigeon-export/1"
CHUNK = 500

# Media plugs in here: (dbs, settings, message_ids) -> [(path inside the zip, bytes, metadata)]
AttachmentSource = Callable[
    [Databases, Settings, list[int]], Awaitable[list[tuple[str, bytes, dict[str, Any]]]]
]
attachment_sources: list[AttachmentSource] = []


def _short(u: Any) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "display_name": u.display_name}


async def build(dbs: Databases, settings: Settings, user_id: int) -> dict[str, Any]:
    async with dbs.app.read() as session:
        user = await accounts.get_user(session, user_id)
        viewer = (await accounts.load_principals(session, [user_id])).get(user_id)
        if viewer is None:
            raise NotFound("No such user.", code="user_not_found")
        communities = [
            c
            for c in await accounts.list_communities(session, viewer)
            if c.id in viewer.community_ids
        ]
        contacts = await accounts.list_contacts(session, user_id)
        blocked = await accounts.list_blocks(session, user_id)
    ctx = messaging.Ctx(dbs=dbs, settings=settings, viewer=viewer)
    since = messaging.visible_since(ctx)
    hidden = {u.id for u in blocked}

    async with dbs.messaging.read() as session:
        convs = (
            await session.execute(
                select(C)
                .select_from(C.join(P, P.c.conversation_id == C.c.id))
                .where(P.c.user_id == user_id, C.c.deleted_at.is_(None))
                .order_by(C.c.id)
            )
        ).all()
        conv_ids = [c.id for c in convs]
        members = (
            (
                await session.execute(
                    select(P.c.conversation_id, P.c.user_id, P.c.display_name).where(
                        P.c.conversation_id.in_(conv_ids)
                    )
                )
            ).all()
            if conv_ids
            else []
        )
        messages: list[Any] = []
        for i in range(0, len(conv_ids), CHUNK):
            messages += (
                await session.execute(
                    select(M)
                    .where(
                        M.c.conversation_id.in_(conv_ids[i : i + CHUNK]),
                        M.c.created_at >= since,
                        M.c.deleted_at.is_(None),
                    )
                    .order_by(M.c.conversation_id, M.c.id)
                )
            ).all()
    async with dbs.app.read() as session:
        people = await accounts.users_by_ids(session, {m.user_id for m in members})

    kind = {c.id: c.kind for c in convs}
    by_conv: dict[int, list[dict[str, Any]]] = {cid: [] for cid in conv_ids}
    for m in messages:
        if kind[m.conversation_id] == "group" and m.sender_id in hidden:
            continue
        item = messaging.message_dict(m)
        item["mine"] = m.sender_id == user_id
        by_conv[m.conversation_id].append(item)
    roster: dict[int, list[dict[str, Any]]] = {}
    for m in members:
        u = people.get(m.user_id)
        roster.setdefault(m.conversation_id, []).append(
            _short(u) if u else {"id": m.user_id, "username": None, "display_name": m.display_name}
        )
    return {
        "format": FORMAT,
        "exported_at": clock.now(),
        "server_version": __version__,
        "retention_days": messaging.retention_days(settings, viewer),
        "profile": user_dict(user, private=True, communities=communities),
        "contacts": [_short(u) for u in contacts],
        "blocks": [_short(u) for u in blocked],
        "conversations": [
            {
                "id": c.id,
                "kind": c.kind,
                "title": c.title,
                "created_at": c.created_at,
                "participants": roster.get(c.id, []),
                "messages": by_conv[c.id],
            }
            for c in convs
        ],
    }


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, default=_default, ensure_ascii=False, indent=2).encode()


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


async def export_file(dbs: Databases, settings: Settings, user_id: int) -> tuple[str, bytes, str]:
    """(file name, content, media type): JSON, or a zip when there are attachments."""
    data = await build(dbs, settings, user_id)
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    base = f"pigeon-export-{data['profile']['username']}-{stamp}"
    message_ids = [m["id"] for c in data["conversations"] for m in c["messages"]]
    files: list[tuple[str, bytes, dict[str, Any]]] = []
    for source in attachment_sources:
        files += await source(dbs, settings, message_ids)
    if not files:
        return f"{base}.json", _json(data), "application/json"
    data["attachments"] = [{"path": path, **meta} for path, _, meta in files]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("export.json", _json(data))
        for path, content, _ in files:
            zf.writestr(f"attachments/{path}", content)
    return f"{base}.zip", buffer.getvalue(), "application/zip"
