"""The messaging rules, in one place, as plain checks over plain facts.

Each check raises `NotAllowed`/`Invalid` with the code a client sees. The services gather the
facts (who is acting, the switch, memberships, blocks) and call these; nothing else decides.

| rule | check | code |
| --- | --- | --- |
| 1 the switch | check_enabled | messaging_disabled |
| - suspended or disabled accounts | check_active | account_suspended |
| 2 who may start (and add people to a group) | check_can_start | initiation_not_allowed |
| - group changes: its owner and admins | check_can_manage_group | not_group_admin |
| - removing: anyone leaves; nobody removes the owner | check_can_remove | not_group_admin |
| - deleting a group: its owner | check_can_delete_group | not_group_owner |
| 3 community boundary, starting (others look absent) | visible_to | user_not_found |
| 3 community boundary, every send and edit | check_same_community | outside_community |
| 4 blocks (direct: refused; group: not delivered) | send_blockers, check_not_blocked | blocked |
| 5 one direct conversation per pair | direct_key (unique in the database) | - |
| 7 content | clean_body, clean_title | validation_error |
| 7 content: text or files | clean_message | validation_error |
| 7 content: a reaction is one emoji | clean_emoji | invalid_emoji |
| 8 attachments: one's own uploads, unused, at most 10 | check_attachments | attachment_* |
| 8 upload size by tier | check_upload_size | file_too_large |
| 8 storage quota per member | check_quota | quota_exceeded |
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from pigeon.core.errors import Invalid, NotAllowed, TooLarge
from pigeon.core.principal import Principal
from pigeon.core.text import clean_text, is_single_emoji, single_line

INITIATOR_TIERS = frozenset({"privileged", "privileged_plus"})
INITIATOR_ROLES = frozenset({"manager", "owner", "admin"})
GROUP_MANAGER_ROLES = frozenset({"owner", "admin"})


def check_enabled(enabled: bool) -> None:
    if not enabled:
        raise NotAllowed("Messaging is switched off on this server.", code="messaging_disabled")


def check_writable(mode: str) -> None:
    """Read-only (before a migration, during an incident): reading, searching and exporting go
    on; nothing new is written."""
    if mode == "read_only":
        raise NotAllowed(
            "Messaging is read-only on this server for now: you can read, search and export, "
            "but nothing new can be sent.",
            code="messaging_read_only",
        )


def check_active(actor: Principal, now: dt.datetime) -> None:
    if actor.is_suspended(now):
        raise NotAllowed("Your account is suspended.", code="account_suspended")


def can_start(actor: Principal) -> bool:
    return actor.tier in INITIATOR_TIERS or actor.role in INITIATOR_ROLES


def check_can_start(actor: Principal) -> None:
    if not can_start(actor):
        raise NotAllowed(
            "Free members can reply to conversations but not start them.",
            code="initiation_not_allowed",
        )


def visible_to(viewer: Principal, other: Principal) -> bool:
    """Whether the viewer may see (and so start a conversation with) the other person: an
    active account sharing one of the viewer's communities."""
    return other.id == viewer.id or (
        other.is_active and bool(viewer.community_ids & other.community_ids)
    )


def check_same_community(actor: Principal, others: Iterable[Principal]) -> None:
    """Every send and edit: the others still share a community with the writer. The people
    already know each other, so the refusal says why, without naming anyone."""
    for other in others:
        if other.id != actor.id and not (actor.community_ids & other.community_ids):
            raise NotAllowed(
                "You no longer share a community with everyone in this conversation, so it is "
                "read-only.",
                code="outside_community",
            )


def check_not_blocked(
    user_id: int, others: Collection[int], blocks: Collection[tuple[int, int]]
) -> None:
    """`blocks` holds (blocker, blocked) pairs; any pair between user and others refuses."""
    for blocker, blocked in blocks:
        if (blocker == user_id and blocked in others) or (blocked == user_id and blocker in others):
            raise NotAllowed("You cannot message this person.", code="blocked")


def send_blockers(
    kind: str, sender_id: int, others: Collection[int], edges: Collection[tuple[int, int]]
) -> set[int]:
    """Who must not receive a send: a direct message across a block is refused outright; in a
    group, those who blocked the sender simply do not get it (rule 4)."""
    if kind == "direct":
        check_not_blocked(sender_id, others, edges)
        return set()
    return blockers_of(sender_id, edges) & set(others)


def blockers_of(user_id: int, edges: Collection[tuple[int, int]]) -> set[int]:
    """Those who blocked `user_id`, from (blocker, blocked) pairs."""
    return {blocker for blocker, blocked in edges if blocked == user_id}


def check_can_manage_group(participant_role: str | None) -> None:
    if participant_role not in GROUP_MANAGER_ROLES:
        raise NotAllowed("Only the group's owner and admins can do that.", code="not_group_admin")


def check_can_remove(
    actor_id: int, actor_role: str | None, target_id: int, target_role: str | None
) -> None:
    """Anyone may leave; the owner and group admins remove others, but never the owner."""
    if target_id == actor_id:
        return
    check_can_manage_group(actor_role)
    if target_role == "owner":
        raise NotAllowed("The group's owner cannot be removed.", code="not_group_admin")


def check_can_delete_group(actor_role: str | None) -> None:
    if actor_role != "owner":
        raise NotAllowed("Only the group's owner can delete it.", code="not_group_owner")


def check_group_size(count: int, maximum: int) -> None:
    if count > maximum:
        raise Invalid(
            f"A group can have at most {maximum} members.",
            code="group_too_large",
            fields={"participant_ids": f"at most {maximum}"},
        )


def clean_body(body: str, max_chars: int) -> str:
    return clean_text(body, field="body", max_chars=max_chars)


def clean_message(body: str, max_chars: int, *, attachments: int) -> str:
    """A message's text: required unless it carries files."""
    return clean_text(body, field="body", max_chars=max_chars, min_chars=0 if attachments else 1)


def clean_emoji(value: str) -> str:
    emoji = unicodedata.normalize("NFC", value.strip())
    if not is_single_emoji(emoji):
        raise Invalid(
            "A reaction is one emoji.", code="invalid_emoji", fields={"emoji": "one emoji"}
        )
    return emoji


def check_attachments(sender_id: int, wanted: Sequence[int], found: Iterable[Any]) -> None:
    """A message may carry only the sender's own uploads that no message carries yet, each
    once. `found` is the stored rows of `wanted` (id, uploader_id, message_id, deleted_at)."""
    if len(set(wanted)) != len(wanted):
        raise Invalid(
            "Each attachment can be attached once.",
            code="attachment_repeated",
            fields={"attachment_ids": "repeated"},
        )
    rows = {row.id: row for row in found}
    for attachment_id in wanted:
        row = rows.get(attachment_id)
        if row is None or row.uploader_id != sender_id or row.deleted_at is not None:
            raise Invalid(
                f"No upload {attachment_id} of yours to attach.",
                code="attachment_not_found",
                fields={"attachment_ids": f"{attachment_id} is not an upload of yours"},
            )
        if row.message_id is not None:
            raise Invalid(
                f"Upload {attachment_id} is already attached to a message.",
                code="attachment_in_use",
                fields={"attachment_ids": f"{attachment_id} is already attached"},
            )


def check_upload_size(size: int, limit: int) -> None:
    if size > limit:
        raise file_too_large(limit)


def file_too_large(limit: int) -> TooLarge:
    return TooLarge(
        f"Files can be at most {_megabytes(limit)}.",
        code="file_too_large",
        fields={"file": f"at most {limit} bytes"},
    )


def check_quota(stored: int, adding: int, quota: int) -> None:
    if stored + adding > quota:
        raise TooLarge(
            f"Your files would pass your storage quota of {_megabytes(quota)}; remove some "
            "and try again.",
            code="quota_exceeded",
        )


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def clean_title(title: str | None, max_chars: int) -> str | None:
    if title is None or not title.strip():
        return None
    return single_line(title, field="title", max_chars=max_chars)


def retention_cutoff(days: int, now: dt.datetime) -> dt.datetime:
    """The oldest creation time a participant with a `days` window may still see."""
    return now - dt.timedelta(days=days)
