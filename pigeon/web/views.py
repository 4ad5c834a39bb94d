"""Shaping service results for templates: labels, day groups, the "seen" marker. No rules here."""

from __future__ import annotations

from typing import Any


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
    if last is None:
        text = "No messages yet"
    elif last["deleted"]:
        text = "Message deleted"
    else:
        text = last["body"]
    return {
        "id": convo["id"],
        "kind": convo["kind"],
        "label": convo_label(convo, viewer_id),
        "avatar_seed": others[0]["id"] if others and convo["kind"] == "direct" else -convo["id"],
        "preview": sender + text,
        "time": last["created_at"] if last else convo["updated_at"],
        "unread": convo["unread_count"],
        "updated_at": convo["updated_at"],
    }


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


def people_by_id(convo: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["id"]: p for p in convo["participants"]}
