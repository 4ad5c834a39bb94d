"""The reply form as it arrives: url-encoded (text only) or multipart (text and files).

A multipart body is streamed here, not by Starlette's form parser (which would spool files of
any size): each file to a temporary file held to the sender's size limit, the text fields to
memory (`BodyLimit` lets it through for that). Its CSRF token is one of those fields, so it is
known only once the body has arrived; nothing is done with the files before it is checked, and
they are removed whatever happens (`Reply.discard`).

When the body is refused part way (a file too large, too many files), the fields that came
before are kept so the page can show the message that was typed — but only if the form's
token came with them and is right: without it nothing of the body is shown back.
"""

from __future__ import annotations

import dataclasses

from fastapi import Request

from pigeon.core.errors import AppError, Invalid
from pigeon.core.types import parse_row_id
from pigeon.media.receive import Form, Received, receive_form
from pigeon.messaging import attachments
from pigeon.messaging.context import Ctx
from pigeon.messaging.schemas import MAX_ATTACHMENTS
from pigeon.web.session import CSRF_FIELD, check_csrf

MULTIPART = "multipart/form-data"


@dataclasses.dataclass
class Reply:
    form: Form = dataclasses.field(default_factory=Form)

    @property
    def body(self) -> str:
        return self.form.fields.get("body", "")

    @property
    def client_msg_id(self) -> str | None:
        return self.form.fields.get("client_msg_id") or None

    @property
    def files(self) -> list[Received]:
        return self.form.files

    @property
    def reply_to_id(self) -> int | None:
        """The message this one answers (the Reply action), if any."""
        value = self.form.fields.get("reply_to_id", "").strip()
        if not value:
            return None
        parsed = parse_row_id(value)
        if parsed is None:
            raise Invalid(
                "That reply is not to a message here.", fields={"reply_to_id": "not a message id"}
            )
        return parsed

    def attachment_ids(self) -> list[int]:
        """Uploads the page's script made beforehand, each sent as an `attachment_ids` field."""
        ids = [parse_row_id(v) for v in self.form.values("attachment_ids") if v.strip()]
        if None in ids:
            raise Invalid(
                "That attachment is not one of your uploads.",
                fields={"attachment_ids": "must be upload ids"},
            )
        return [i for i in ids if i is not None]

    def discard(self) -> None:
        self.form.discard()


async def read_reply(request: Request, ctx: Ctx, reply: Reply) -> None:
    """Fill `reply` from the request, and check its CSRF token."""
    content_type = request.headers.get("content-type", "")
    # the same test as BodyLimit's: what it let through unbounded never reaches request.form()
    if not content_type.lower().startswith(MULTIPART):
        posted = await request.form()
        for name, value in posted.multi_items():
            if isinstance(value, str):
                reply.form.fields[name] = value
                reply.form.items.append((name, value))
        check_csrf(request, reply.form.fields.get(CSRF_FIELD))
        return
    limit = attachments.upload_limit(ctx)
    try:
        await receive_form(
            content_type,
            request.headers.get("content-length"),
            request.stream(),
            folder=attachments.incoming(ctx.settings),
            limit=limit,
            too_large=lambda: attachments.too_large(limit),
            field="files",
            max_files=MAX_ATTACHMENTS,
            max_fields=MAX_ATTACHMENTS + 6,
            # the message, each character up to four bytes in UTF-8 (a line break: two)
            max_field_bytes=4 * ctx.settings.max_body_chars + 64,
            into=reply.form,
        )
    except AppError:
        if CSRF_FIELD not in reply.form.fields:
            reply.form = Form(files=reply.form.files)  # nothing unverified is shown back
        else:
            check_csrf(request, reply.form.fields[CSRF_FIELD])
        raise
    check_csrf(request, reply.form.fields.get(CSRF_FIELD))
