"""Shaping service results for templates: labels, day groups, the "seen" marker, how files
show. No rules here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pigeon.accounts import service as accounts
from pigeon.core.runtime import Runtime
from pigeon.messaging.reports import REASONS

# a file card's badge: a few kinds by content type, for its colour (the label is the extension)
_KINDS = (
    ("application/pdf", "pdf"),
    ("image/", "image"),
    ("audio/", "audio"),
    ("video/", "video"),
    ("text/", "text"),
    ("application/zip", "archive"),
    ("application/x-7z", "archive"),
    ("application/gzip", "archive"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml", "sheet"),
    ("application/vnd.ms-excel", "sheet"),
    ("application/vnd.oasis.opendocument.spreadsheet", "sheet"),
    ("application/msword", "doc"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml", "doc"),
    ("application/vnd.oasis.opendocument.text", "doc"),
)


def convo_label(convo: dict[str, Any], viewer_id: int) -> str:
    others = [p for p in convo["participants"] if p["id"] != viewer_id]
    if convo["kind"] == "group":
        if convo.get("title"):
            return str(convo["title"])
        names = [p["display_name"] for p in others[:3]]
        return ", ".join(names) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    return str(others[0]["display_name"]) if others else "Just you"


def convo_row(convo: dict[str, Any], viewer_id: int) -> dict[str, Any]:
    """One row of the conversation list."""
    others = [p for p in convo["participants"] if p["id"] != viewer_id]
    last = convo.get("last_message")
    sender = ""
    if last and convo["kind"] == "group":
        if last["sender_id"] == viewer_id:
            sender = "You: "
        else:
            who = next((p for p in convo["participants"] if p["id"] == last["sender_id"]), None)
            sender = f"{who['display_name']}: " if who else ""
    elif last and last["sender_id"] == viewer_id:
        sender = "You: "
    attached = False
    if last is None:
        text = "No messages yet"
    elif last["deleted"]:
        text = "Message deleted"
    else:
        files = last.get("attachments") or []
        text = last["body"].strip() or files_summary(files)
        attached = bool(files) and bool(last["body"].strip())
    return {
        "id": convo["id"],
        "kind": convo["kind"],
        "label": convo_label(convo, viewer_id),
        "avatar_seed": others[0]["id"] if others and convo["kind"] == "direct" else -convo["id"],
        "sender": sender,
        "preview": text,
        "attached": attached,  # text with files: a paperclip before it
        "time": last["created_at"] if last else convo["updated_at"],
        "unread": convo["unread_count"],
        "updated_at": convo["updated_at"],
        "muted": convo.get("muted", False),
        "pinned": convo.get("pinned", False),
        "archived": convo.get("archived", False),
        "marked_unread": convo.get("marked_unread", False),
    }


GROUP_SECONDS = 300  # messages from one person this close together read as one group


def with_groups(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark runs of messages from the same person a few minutes apart: `cont` for those after
    the first (no name again), `more` for those before the last (no time again: it shows on
    hover and focus). The script does the same for messages it adds."""
    previous: dict[str, Any] | None = None
    for message in messages:
        message["cont"] = message["more"] = False
        if (
            previous is not None
            and previous["sender_id"] == message["sender_id"]
            and 0
            <= (message["created_at"] - previous["created_at"]).total_seconds()
            <= GROUP_SECONDS
        ):
            message["cont"] = previous["more"] = True
        previous = message
    return messages


def seen_marker(
    convo: dict[str, Any], messages: list[dict[str, Any]], viewer_id: int
) -> int | None:
    """In a direct conversation: the id of my last message if the other person has read it."""
    if convo["kind"] != "direct":
        return None
    mine = [m["id"] for m in messages if m["sender_id"] == viewer_id and not m["deleted"]]
    other = next((p for p in convo["participants"] if p["id"] != viewer_id), None)
    if not mine or other is None:
        return None
    return mine[-1] if other["last_read_message_id"] >= mine[-1] else None


NAMED_REACTORS = 3  # a pill names this many, then "and N others"


def reaction_label(emoji: str, names: list[str], mine: bool) -> str:
    """What a reaction pill says to a screen reader and on hover: who reacted, in the order
    they did, the viewer last of those named: "👍 3: Ada, Bob and you", "👍 7: Ada, Bob, you
    and 4 others". It starts with what the pill shows ("👍 3"), so speech control finds the
    pill by what it reads."""
    count = len(names) + mine
    shown = names[: NAMED_REACTORS - mine] + (["you"] if mine else [])
    rest = count - len(shown)
    if rest:
        shown.append(f"{rest} other" + ("" if rest == 1 else "s"))
    who = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f"{emoji} {count}: {who[:1].upper()}{who[1:]}"


def with_reactions(
    messages: list[dict[str, Any]], viewer_id: int, people: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each message's reactions as pills: pressed when the viewer is among them, labelled with
    who reacted (named as `author` names them, from `people`)."""
    for message in messages:
        pills = []
        for reaction in message.get("reactions") or []:
            mine = viewer_id in reaction["user_ids"]
            names = [author(u, viewer_id, people) for u in reaction["user_ids"] if u != viewer_id]
            label = reaction_label(reaction["emoji"], names, mine)
            pills.append({**reaction, "mine": mine, "label": label})
        message["reactions"] = pills
        message["my_emojis"] = {p["emoji"] for p in pills if p["mine"]}
    return messages


def people_by_id(convo: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["id"]: p for p in convo["participants"]}


async def with_departed(
    rt: Runtime, people: dict[int, dict[str, Any]], sender_ids: Iterable[int | None]
) -> dict[int, dict[str, Any]]:
    """`people` (a conversation's members) and the senders no longer in it whose account was
    deleted, named `accounts.DELETED_NAME`: one read, only when a sender is missing. Others who
    left stay out, and `author` calls them "Former member"."""
    missing = {i for i in sender_ids if i is not None and i not in people}
    if not missing:
        return people
    async with rt.dbs.app.read() as session:
        users = await accounts.users_by_ids(session, missing)
    gone = {
        uid: {"id": uid, "username": None, "display_name": accounts.DELETED_NAME}
        for uid, user in users.items()
        if user.deleted_at is not None
    }
    return {**people, **gone} if gone else people


def people_in(messages: Iterable[dict[str, Any]]) -> set[int | None]:
    """Who wrote these messages, the ones they quote, and who reacted to them: whom
    `with_departed` should know."""
    found: set[int | None] = set()
    for m in messages:
        found.add(m["sender_id"])
        if m.get("reply_to"):
            found.add(m["reply_to"].get("sender_id"))
        for reaction in m.get("reactions") or []:
            found.update(reaction["user_ids"])
    return found


def author(sender_id: int | None, viewer_id: int, people: dict[int, dict[str, Any]]) -> str:
    """Who wrote a message, as every page says it: "You", their name ("Deleted member" for a
    deleted account, see `with_departed`), or "Former member" for someone who left."""
    if sender_id == viewer_id:
        return "You"
    person = people.get(sender_id) if sender_id is not None else None
    return str(person["display_name"]) if person else "Former member"


def quote_view(
    quote: dict[str, Any] | None,
    viewer_id: int,
    people: dict[int, dict[str, Any]],
    conversation_id: int,
    on_page: set[int] | None = None,
) -> dict[str, Any] | None:
    """What a reply shows above itself: who wrote the original, its first line (or what it
    carried), and a link to it: on this page if it is here, else the page that ends with it."""
    if quote is None:
        return None
    target = quote["id"]
    if not quote["available"]:
        return {"id": target, "gone": True, "text": "Original message not available"}
    if quote["deleted"]:
        text = "Original message deleted"
    elif quote["excerpt"]:
        text = quote["excerpt"]
    else:
        count = quote["attachments"]
        text = "A file" if count == 1 else f"{count} files" if count else "Message"
    here = on_page is not None and target in on_page
    return {
        "id": target,
        "gone": bool(quote["deleted"]),
        "author": author(quote["sender_id"], viewer_id, people),
        "text": text,
        "href": f"#m{target}"
        if here
        else f"/messages/{conversation_id}?before={target + 1}#m{target}",
    }


def shape_messages(
    messages: Iterable[dict[str, Any]],
    viewer_id: int,
    convo: dict[str, Any],
    box: int,
    people: dict[int, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Messages as the thread shows them: who wrote them, files, reactions, quotes, groups.
    `people` by id (default: the conversation's members)."""
    people = people if people is not None else people_by_id(convo)
    shaped = with_reactions(with_files(messages, box), viewer_id, people)
    for message in shaped:
        message["who"] = author(message["sender_id"], viewer_id, people)
    with_quotes(shaped, viewer_id, people, convo["id"])
    return with_groups(shaped)


def with_quotes(
    messages: list[dict[str, Any]],
    viewer_id: int,
    people: dict[int, dict[str, Any]],
    conversation_id: int,
) -> list[dict[str, Any]]:
    on_page = {m["id"] for m in messages}
    for message in messages:
        message["quote"] = quote_view(
            message.get("reply_to"), viewer_id, people, conversation_id, on_page
        )
    return messages


# --- files ---


def human_size(size: int) -> str:
    """1.2 MB, 340 KB, 12 bytes: in steps of 1,024, one decimal below ten."""
    if size < 1024:
        return f"{size} byte" + ("" if size == 1 else "s")
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def is_photo(attachment: dict[str, Any]) -> bool:
    return bool(attachment.get("thumbnail_url")) and not attachment["removed"]


def files_summary(attachments: list[dict[str, Any]]) -> str:
    """A message that is only files, in a line: Photo, 3 photos, File: list.pdf, 2 files."""
    present = [a for a in attachments if not a["removed"]]
    if not present:
        return "Attachment removed" if attachments else "Message"
    photos = sum(1 for a in present if is_photo(a))
    if photos == len(present):
        return "Photo" if photos == 1 else f"{photos} photos"
    if len(present) == 1:
        return f"File: {present[0]['file_name']}"
    return f"{len(present)} files"


def thumb_size(attachment: dict[str, Any], box: int) -> tuple[int, int]:
    """The thumbnail's size, as processing makes it: the image fitted into `box`, never
    enlarged. The page reserves it, so nothing moves when the thumbnail arrives."""
    width, height = attachment.get("width") or box, attachment.get("height") or box
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def file_card(attachment: dict[str, Any]) -> dict[str, Any]:
    name = str(attachment["file_name"])
    stem, dot, ext = name.rpartition(".")
    content_type = str(attachment["content_type"])
    kind = next((k for prefix, k in _KINDS if content_type.startswith(prefix)), "file")
    return {
        **attachment,
        "kind": kind,
        "label": ext[:4].upper() if dot and stem and ext.isalnum() else kind.upper()[:4],
        "human_size": human_size(int(attachment["size"])),
    }


def with_files(messages: Iterable[dict[str, Any]], box: int) -> list[dict[str, Any]]:
    """Each message with its files sorted for showing: `photos` (a grid of thumbnails, each
    with its reserved size) and `files` (cards; a removed attachment is one too)."""
    shaped = []
    for message in messages:
        attachments = message.get("attachments") or []
        photos, files = [], []
        for attachment in attachments:
            if is_photo(attachment):
                width, height = thumb_size(attachment, box)
                photos.append({**attachment, "thumb_width": width, "thumb_height": height})
            else:
                files.append(file_card(attachment))
        shaped.append({**message, "photos": photos, "files": files})
    return shaped


REASON_LABELS = {
    "spam": "Spam",
    "harassment": "Harassment or bullying",
    "hate": "Hate",
    "violence": "Violence or threats",
    "sexual": "Sexual content",
    "self_harm": "Self-harm",
    "impersonation": "Pretending to be someone else",
    "other": "Something else",
}


def report_reasons() -> list[tuple[str, str]]:
    """(value, label) of the reasons a report may give, for the report forms."""
    return [(r, REASON_LABELS.get(r, r)) for r in REASONS]
