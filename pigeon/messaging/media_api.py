"""Attachments over HTTP: upload, fetch (the file and its thumbnail), remove."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from pigeon.core.errors import Invalid
from pigeon.core.types import RowIdPath, parse_row_id
from pigeon.media.receive import receive_file
from pigeon.media.serving import serve
from pigeon.messaging import attachments
from pigeon.messaging.deps import MessagingCtx as Ctx
from pigeon.messaging.schemas import AttachmentOut

router = APIRouter(tags=["media"])

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "conversation_id": {
                            "type": "integer",
                            "description": "the conversation it is meant for (optional)",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/media/upload",
    status_code=201,
    response_model=AttachmentOut,
    openapi_extra=UPLOAD_BODY,
    responses={
        413: {"description": "`file_too_large`, `image_too_large` or `quota_exceeded`"},
        415: {"description": "`unsupported_type`: decided from the file's bytes"},
    },
)
async def upload(request: Request, ctx: Ctx) -> AttachmentOut:
    """Upload one file (multipart, part `file`). It is yours alone until a message names it
    in `attachment_ids`; uploads left unattached for a day are removed. Images are checked,
    stripped of their metadata (EXIF, GPS), turned upright and given a thumbnail."""
    limit = await attachments.check_can_upload(ctx)
    received, fields = await receive_file(
        request.headers.get("content-type", ""),
        request.headers.get("content-length"),
        request.stream(),
        folder=attachments.incoming(ctx.settings),
        limit=limit,
        too_large=lambda: attachments.too_large(limit),
    )
    try:
        return await attachments.upload(
            ctx, received, conversation_id=_optional_id(fields.get("conversation_id"))
        )
    finally:
        received.discard()


def _optional_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    found = parse_row_id(value)
    if found is None:
        raise Invalid(fields={"conversation_id": "must be a conversation id"})
    return found


FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the file", "content": {"application/octet-stream": {}}},
    206: {"description": "the byte range asked for"},
    304: {"description": "not modified (If-None-Match)"},
    416: {"description": "`range_not_satisfiable`"},
}


@router.get("/media/{attachment_id}", response_class=Response, responses=FILE_RESPONSES)
async def download(attachment_id: RowIdPath, request: Request, ctx: Ctx) -> Response:
    """The file, to whoever can see its message (or its uploader, before it is attached).
    Images are shown inline; every other file is a download."""
    found = await attachments.file_of(ctx, attachment_id)
    return await serve(request, ctx.rt.media, found)


@router.get("/media/{attachment_id}/thumbnail", response_class=Response, responses=FILE_RESPONSES)
async def thumbnail(attachment_id: RowIdPath, request: Request, ctx: Ctx) -> Response:
    """An image's thumbnail (WebP, at most `PIGEON_MEDIA_THUMBNAIL_PX` on its longer side)."""
    found = await attachments.file_of(ctx, attachment_id, thumbnail=True)
    return await serve(request, ctx.rt.media, found)


@router.delete("/media/{attachment_id}", status_code=204)
async def remove(attachment_id: RowIdPath, ctx: Ctx) -> Response:
    """Remove a file you uploaded (admins: any). Its message says the attachment was removed."""
    await attachments.remove_attachment(ctx, attachment_id)
    return Response(status_code=204)
