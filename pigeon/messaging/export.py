"""A member's data export: their profile, contacts, blocks, conversations and messages.

It holds what the member can see in the product, nothing more: their visible messages
(`visibility.visible_messages`), without deleted ones, in `export.json`, and the files they
attached to them under `files/`, in one zip.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pigeon import __version__
from pigeon.accounts import blocks, communities, directory
from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.accounts.views import user_dict
from pigeon.core import migrate
from pigeon.core.blobs import MediaMissing
from pigeon.core.db import Databases
from pigeon.core.errors import NotFound
from pigeon.core.runtime import Runtime
from pigeon.messaging.models import Attachment, Conversation, Message, Participant
from pigeon.messaging.schemas import MessageOut
from pigeon.messaging.service import messages_out_in
from pigeon.messaging.visibility import retention_days, visible_messages, visible_since

log = logging.getLogger("pigeon.export")

FORMAT = "pigeon-export/2"  # 2: a zip, with the member's files
CHUNK = 500


def _short(u: User) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "display_name": u.display_name}


async def build(rt: Runtime, user_id: int) -> dict[str, Any]:
    dbs, settings = rt.dbs, rt.settings
    async with dbs.app.read() as session:
        user = await accounts.get_user(session, user_id)
        viewer = (await directory.load_principals(session, [user_id])).get(user_id)
        if viewer is None:
            raise NotFound("No such user.", code="user_not_found")
        mine = [
            c
            for c in await communities.list_communities(session, viewer)
            if c.id in viewer.community_ids
        ]
        contacts = await blocks.list_contacts(session, user_id)
        blocked = await blocks.list_blocks(session, user_id)
    since = visible_since(settings, viewer, rt.clock.now())
    hidden = {u.id for u in blocked}

    convs: list[Conversation] = []
    members: list[Participant] = []
    messages: list[MessageOut] = []
    if await migrate.exists(dbs.messaging):  # none while messaging was never switched on
        convs, members, messages = await _history(dbs, user_id, since, hidden)
    conv_ids = [c.id for c in convs]
    async with dbs.app.read() as session:
        people = await accounts.users_by_ids(session, {m.user_id for m in members})

    by_conv: dict[int, list[dict[str, Any]]] = {cid: [] for cid in conv_ids}
    for m in messages:
        item = m.model_dump()
        item["mine"] = m.sender_id == user_id
        by_conv[m.conversation_id].append(item)
    roster: dict[int, list[dict[str, Any]]] = {}
    for p in members:
        u = people.get(p.user_id)
        roster.setdefault(p.conversation_id, []).append(
            _short(u) if u else {"id": p.user_id, "username": None, "display_name": p.display_name}
        )
    return {
        "format": FORMAT,
        "exported_at": rt.clock.now(),
        "server_version": __version__,
        "retention_days": retention_days(settings, viewer),
        "profile": user_dict(user, private=True, communities=mine),
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


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


async def _history(
    dbs: Databases, user_id: int, since: Any, hidden: set[int]
) -> tuple[list[Conversation], list[Participant], list[MessageOut]]:
    """The member's conversations, everyone in them, and the messages they may still see."""
    async with dbs.messaging.read() as session:
        convs = (
            await session.scalars(
                select(Conversation)
                .join(Participant, Participant.conversation_id == Conversation.id)
                .where(Participant.user_id == user_id, Conversation.deleted_at.is_(None))
                .order_by(Conversation.id)
            )
        ).all()
        conv_ids = [c.id for c in convs]
        members: list[Participant] = []
        messages: list[MessageOut] = []
        for i in range(0, len(conv_ids), CHUNK):
            chunk = conv_ids[i : i + CHUNK]
            members += (
                await session.scalars(
                    select(Participant).where(Participant.conversation_id.in_(chunk))
                )
            ).all()
            rows = (
                await session.scalars(
                    visible_messages(user_id, since=since, hidden=hidden, include_deleted=False)
                    .where(Message.conversation_id.in_(chunk))
                    .order_by(Message.conversation_id, Message.id)
                )
            ).all()
            messages += await messages_out_in(session, rows)
    return list(convs), members, messages


async def export_file(rt: Runtime, user_id: int, folder: Path) -> tuple[str, Path]:
    """A member's export as a zip in `folder`: `export.json` (profile, contacts, blocks,
    conversations and the messages they can still see) and, under `files/`, the files they
    attached to those messages. Returns (the name to offer, the zip); the caller removes it."""
    data = await build(rt, user_id)
    stamp = rt.clock.now().strftime("%Y%m%d-%H%M%S")
    name = f"pigeon-export-{data['profile']['username']}-{stamp}.zip"
    theirs = await _their_files(rt, user_id, data)
    data["files"] = [
        {"id": a.id, "message_id": a.message_id, "file_name": a.file_name, "path": path}
        for a, path in theirs
    ]
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="export-", suffix=".zip", dir=folder)
    os.close(fd)
    path = Path(tmp)
    try:
        with zipfile.ZipFile(path, "w") as archive:
            content = json.dumps(data, default=_default, ensure_ascii=False, indent=2)
            archive.writestr("export.json", content, compress_type=zipfile.ZIP_DEFLATED)
            for attachment, arcname in theirs:
                # photos and documents are compressed already: stored as they are
                with archive.open(arcname, "w", force_zip64=True) as out:
                    try:
                        async for chunk in await rt.media.stream(attachment.storage_key):
                            out.write(chunk)
                    except MediaMissing:
                        log.warning("export: attachment %s has no file", attachment.id)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return name, path


async def _their_files(
    rt: Runtime, user_id: int, data: dict[str, Any]
) -> list[tuple[Attachment, str]]:
    """The member's own files in the messages exported, with their place in the zip."""
    message_ids = [
        m["id"]
        for c in data["conversations"]
        for m in c["messages"]
        if m["mine"] and m["attachments"]
    ]
    found: list[tuple[Attachment, str]] = []
    if not message_ids:
        return found
    async with rt.dbs.messaging.read() as session:
        for i in range(0, len(message_ids), CHUNK):
            rows = await session.scalars(
                select(Attachment)
                .where(
                    Attachment.message_id.in_(message_ids[i : i + CHUNK]),
                    Attachment.uploader_id == user_id,
                    Attachment.deleted_at.is_(None),
                )
                .order_by(Attachment.id)
            )
            found += [(a, f"files/{a.id}-{a.file_name}") for a in rows]
    return found
