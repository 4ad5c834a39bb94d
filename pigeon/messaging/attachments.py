"""Attachments: uploading a file, who may fetch it, removing it, and the files nobody names.

An upload belongs to its uploader alone until a message names it (`send_tx` attaches it, in
the send's transaction); from then on whoever can see the message can fetch it, and nobody
else: `access_attachment` asks `message_rule`, the one visibility rule for what is reached
through a message.

Files are written to the media store before the row that names them commits, and removed only
after the row that named them is gone; a crash in between leaves a file no row names, which
`sweep` removes. Unattached uploads older than `media_unattached_hours` are swept too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, or_, select

from pigeon.core.blobs import MediaStore
from pigeon.core.errors import NotAllowed, NotFound, TooLarge
from pigeon.core.runtime import Runtime
from pigeon.core.uow import UnitOfWork
from pigeon.media.receive import Received
from pigeon.media.serving import Served
from pigeon.media.storage import new_key
from pigeon.messaging import policy
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import MessageUpdated
from pigeon.messaging.models import Attachment, Message, Report
from pigeon.messaging.reports import open_report_message_ids
from pigeon.messaging.schemas import AttachmentOut
from pigeon.messaging.service import (
    access_conversation,
    attachment_out,
    load_convo,
    message_rule,
    messages_out_in,
    require_enabled,
    require_writable,
    unseen_by,
)
from pigeon.settings import Settings

if TYPE_CHECKING:
    from pigeon.media import processing

log = logging.getLogger("pigeon.attachments")

INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


# --- uploading ---


def upload_limit(ctx: Ctx) -> int:
    """The largest file the viewer may upload (by tier)."""
    return ctx.settings.media_max_bytes(ctx.viewer.tier, ctx.viewer.role)


def too_large(limit: int) -> TooLarge:
    return policy.file_too_large(limit)


def incoming(settings: Settings) -> Path:
    """Where uploads land while they arrive and are checked."""
    return settings.data_dir / "incoming"


async def check_can_upload(ctx: Ctx) -> int:
    """Before the body is read: the rate limit, the switch, the viewer's standing. Returns
    the size limit the upload is held to."""
    await ctx.rt.limiter.hit("upload", ctx.viewer.id)
    await require_writable(ctx)
    return upload_limit(ctx)


def clean_file_name(name: str) -> str:
    """A file name fit to show and to offer for download: its last path part, no control or
    reserved characters, at most 255 characters."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 250 - len(ext)] + dot + ext) if dot and len(ext) <= 16 else name[:255]
    return name or "file"


@dataclasses.dataclass(frozen=True)
class Stored:
    """An upload checked, processed and in the media store, not yet named by a row."""

    file_name: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    key: str
    thumbnail_key: str | None
    thumbnail_size: int | None
    conversation_id: int | None

    @property
    def keys(self) -> list[str]:
        return [k for k in (self.key, self.thumbnail_key) if k]


async def upload(
    ctx: Ctx, received: Received, *, conversation_id: int | None = None
) -> AttachmentOut:
    """Check, process and store one uploaded file; the row names it once the unit of work
    commits. `conversation_id`, when given, must be one of the viewer's conversations."""
    return await record(ctx, await store(ctx, received, conversation_id=conversation_id))


async def store(ctx: Ctx, received: Received, *, conversation_id: int | None = None) -> Stored:
    """The slow half of an upload: checked, processed (off the event loop) and written to the
    media store, before the unit of work writes anything (on SQLite, a write would hold the
    database's write lock through all of it)."""
    if conversation_id is not None:
        await access_conversation(ctx, conversation_id)
    settings, viewer = ctx.settings, ctx.viewer
    policy.check_upload_size(received.size, upload_limit(ctx))
    quota = settings.media_quota_bytes(viewer.tier, viewer.role)
    policy.check_quota(await stored_bytes(ctx, write=False), received.size, quota)
    from pigeon.media import processing  # Pillow, loaded at the first upload (3 MiB)

    incoming(settings).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="processing-", dir=incoming(settings)))
    try:
        async with ctx.rt.media_work:
            done = await asyncio.to_thread(
                processing.process,
                received.path,
                workdir,
                allowed=settings.media_allowed_types,
                max_pixels=settings.media_max_pixels,
                thumb_px=settings.media_thumbnail_px,
            )
        key = new_key()
        thumb_key = f"{key}.thumb.webp" if done.thumbnail is not None else None
        await _save(ctx.rt.media, key, done, thumb_key)
        return Stored(
            file_name=_named_for(clean_file_name(received.file_name), done.content_type),
            content_type=done.content_type,
            size=done.size,
            width=done.width,
            height=done.height,
            key=key,
            thumbnail_key=thumb_key,
            thumbnail_size=done.thumbnail.stat().st_size if done.thumbnail else None,
            conversation_id=conversation_id,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def record(ctx: Ctx, stored: Stored) -> AttachmentOut:
    """The quick half: the row that names stored files, in the unit of work. The quota is
    checked again in its transaction (concurrent uploads add up). If the unit of work rolls
    back (a send refused after it), the files go too."""
    media = ctx.rt.media
    try:
        quota = ctx.settings.media_quota_bytes(ctx.viewer.tier, ctx.viewer.role)
        policy.check_quota(await stored_bytes(ctx, write=True), stored.size, quota)
        row = Attachment(
            uploader_id=ctx.viewer.id,
            conversation_id=stored.conversation_id,
            file_name=stored.file_name,
            content_type=stored.content_type,
            size=stored.size,
            width=stored.width,
            height=stored.height,
            storage_key=stored.key,
            thumbnail_key=stored.thumbnail_key,
            thumbnail_size=stored.thumbnail_size,
            created_at=ctx.rt.clock.now(),
        )
        ctx.uow.messaging.add(row)
        await ctx.uow.messaging.flush()
    except BaseException:
        await _remove_files(media, stored.keys)
        raise
    ctx.uow.on_rollback(lambda: _remove_files(media, stored.keys))
    return attachment_out(row)


async def discard(ctx: Ctx, stored: Stored) -> None:
    """Stored files no row will name (a later file of the same form was refused)."""
    await _remove_files(ctx.rt.media, stored.keys)


def _named_for(name: str, content_type: str) -> str:
    """A HEIF photo is stored as JPEG: its name says so."""
    stem, dot, ext = name.rpartition(".")
    if content_type == "image/jpeg" and dot and ext.lower() in ("heic", "heif"):
        return f"{stem}.jpg"
    return name


async def _save(
    media: MediaStore, key: str, done: processing.Processed, thumb_key: str | None
) -> list[str]:
    saved: list[str] = []
    try:
        await media.save(key, done.path, done.content_type)
        saved.append(key)
        if thumb_key is not None and done.thumbnail is not None:
            await media.save(thumb_key, done.thumbnail, "image/webp")
            saved.append(thumb_key)
    except BaseException:
        await _remove_files(media, saved)
        raise
    return saved


async def stored_bytes(ctx: Ctx, *, write: bool) -> int:
    """What the viewer keeps stored: every upload of theirs not removed."""
    stmt = select(func.coalesce(func.sum(Attachment.size), 0)).where(
        Attachment.uploader_id == ctx.viewer.id, Attachment.deleted_at.is_(None)
    )
    if write:
        return int(await ctx.uow.messaging.scalar(stmt) or 0)
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        return int(await session.scalar(stmt) or 0)


# --- fetching ---


async def access_attachment(ctx: Ctx, attachment_id: int) -> Any:
    """The attachment, if the viewer may fetch it: the uploader while no message names it;
    afterwards whoever can see the message (`message_rule`). Otherwise not found, with no
    hint either way. One read: files are fetched often, thumbnails a page at a time."""
    await require_enabled(ctx)
    rule, viewer_id = await message_rule(ctx), ctx.viewer.id

    def read(conn: Connection) -> Any:
        found = conn.execute(
            select(*Attachment.__table__.c).where(Attachment.id == attachment_id)
        ).first()
        if found is None or found.deleted_at is not None:
            return None
        if found.message_id is None:
            return found if found.uploader_id == viewer_id else None
        return found if conn.execute(rule(found.message_id)).first() is not None else None

    db = ctx.dbs.messaging
    if ctx.uow.has_written(db):
        found = await ctx.uow.messaging.run_sync(lambda s: read(s.connection()))
    else:
        found = await db.run_read(read)
    if found is None:
        raise NotFound("No such file.", code="attachment_not_found")
    return found


async def file_of(ctx: Ctx, attachment_id: int, *, thumbnail: bool = False) -> Served:
    """The file (or its thumbnail) for someone who may fetch it."""
    return served(await access_attachment(ctx, attachment_id), thumbnail=thumbnail)


def served(row: Any, *, thumbnail: bool) -> Served:
    if not thumbnail:
        return Served(
            key=row.storage_key,
            content_type=row.content_type,
            file_name=row.file_name,
            size=row.size,
            inline=row.content_type in INLINE_TYPES,
        )
    if row.thumbnail_key is None:
        raise NotFound("This file has no thumbnail.", code="thumbnail_not_found")
    stem = row.file_name.rsplit(".", 1)[0] or "thumbnail"
    return Served(
        key=row.thumbnail_key,
        content_type="image/webp",
        file_name=f"{stem}.webp",
        size=row.thumbnail_size,
        inline=True,
    )


# --- removing ---


async def remove_attachment(ctx: Ctx, attachment_id: int) -> None:
    """The uploader (or an admin, moderating) removes a file: the message keeps its place
    and says the attachment was removed; the files go once that commits."""
    await require_writable(ctx)
    session = ctx.uow.messaging
    row = await session.get(Attachment, attachment_id)
    if row is None or row.deleted_at is not None:
        raise NotFound("No such file.", code="attachment_not_found")
    if row.uploader_id != ctx.viewer.id and not ctx.viewer.is_admin:
        # a file the viewer can see but did not upload: say so; any other: not found
        await access_attachment(ctx, attachment_id)
        raise NotAllowed("Only the person who uploaded a file can remove it.")
    row.deleted_at = ctx.rt.clock.now()
    await session.flush()
    reported = row.message_id is not None and await session.scalar(
        open_report_message_ids().where(Report.message_id == row.message_id).limit(1)
    )
    if not reported:  # under a report, moderators may still need it: the sweep takes it later
        keys = [k for k in (row.storage_key, row.thumbnail_key) if k]
        media = ctx.rt.media
        ctx.uow.after_commit(lambda: _remove_files(media, keys))
    if row.message_id is not None:
        message = await session.get(Message, row.message_id)
        convo = await load_convo(session, row.conversation_id) if row.conversation_id else None
        if message is not None and convo is not None:
            blockers = await unseen_by(ctx, convo.kind, message.sender_id)
            [out] = await messages_out_in(session, [message])
            audience = [u for u in convo.members if u not in blockers]
            ctx.uow.emit(MessageUpdated(data=out, id=message.id), audience)


async def _remove_files(media: MediaStore, keys: list[str]) -> None:
    for key in keys:
        try:
            await media.delete(key)
        except Exception:
            log.warning("could not remove %s from the media store; the sweep will", key)


# --- what retention and the sweep remove ---


async def drop_for_messages(uow: UnitOfWork, media: MediaStore, message_ids: list[int]) -> int:
    """Remove the attachments of messages being purged in this unit of work: the rows now,
    the files once it commits."""
    if not message_ids:
        return 0
    session = uow.messaging
    rows = (
        await session.execute(
            select(Attachment.storage_key, Attachment.thumbnail_key).where(
                Attachment.message_id.in_(message_ids)
            )
        )
    ).all()
    keys = [k for pair in rows for k in pair if k]
    await session.execute(delete(Attachment).where(Attachment.message_id.in_(message_ids)))
    uow.after_commit(lambda: _remove_files(media, keys))
    return len(rows)


@dataclasses.dataclass
class SweepResult:
    unattached: int = 0  # uploads no message named in time
    orphans: int = 0  # files no row names (a crash between a file and its row)


async def sweep(rt: Runtime, *, now: dt.datetime | None = None) -> SweepResult:
    """Remove uploads nobody attached within `media_unattached_hours`, and files no row names
        that are older than that (younger ones may belong to an upload still committing), and what
    a crash left in the folder where uploads arrive."""
    now = now or rt.clock.now()
    cutoff = now - dt.timedelta(hours=rt.settings.media_unattached_hours)
    result = SweepResult()
    keys: list[str] = []
    async with rt.uow_scope() as uow:
        session = uow.messaging
        stale = (
            await session.execute(
                select(Attachment.id, Attachment.storage_key, Attachment.thumbnail_key).where(
                    Attachment.message_id.is_(None), Attachment.created_at < cutoff
                )
            )
        ).all()
        if stale:
            await session.execute(
                delete(Attachment).where(Attachment.id.in_([s.id for s in stale]))
            )
        for _, storage_key, thumb in stale:
            keys += [k for k in (storage_key, thumb) if k]
        result.unattached = len(stale)
        media = rt.media
        uow.after_commit(lambda: _remove_files(media, keys))
    named: set[str] = set()
    kept = or_(
        Attachment.deleted_at.is_(None), Attachment.message_id.in_(open_report_message_ids())
    )
    async with rt.dbs.messaging.read() as session:
        for storage_key, thumb in await session.execute(
            select(Attachment.storage_key, Attachment.thumbnail_key).where(kept)
        ):
            named.add(storage_key)
            if thumb:
                named.add(thumb)
    orphans = [k for k in await rt.media.keys(cutoff) if k not in named]
    await _remove_files(rt.media, orphans)
    result.orphans = len(orphans)
    await asyncio.to_thread(_clear_incoming, incoming(rt.settings), cutoff.timestamp())
    return result


def _clear_incoming(folder: Path, before: float) -> None:
    """Uploads a crash left half-received or half-processed."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < before:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        except FileNotFoundError:
            continue
