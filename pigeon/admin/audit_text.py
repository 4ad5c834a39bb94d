"""The audit log read as sentences ("Ada turned messaging off"), for the admin page.

Entries keep what changed as data (`{"before": True, "after": False}`), which is right for the
API and wrong for a person reading the page. Each action the code records has a sentence here;
an action without one still reads as words, and never shows stored values as Python writes
them. Pure functions: the page passes the names it looked up and the reader's time zone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pigeon.core.switches import MODES, mode_of

# a suspension with no end is stored as one that ends after everyone has gone (see moderation)
FOREVER_YEAR = 9999
TIERS = {"free": "free", "privileged": "privileged", "privileged_plus": "privileged plus"}
RESOLUTIONS = {
    "dismiss": "dismissed report {report}",
    "delete_message": "deleted the message of report {report}",
    "suspend_author": "suspended {author} {until} over report {report}",
}


class Entry(Protocol):
    """What a sentence needs of an audit entry (`AuditLog` has it)."""

    created_at: dt.datetime
    actor_id: int | None
    actor_label: str
    action: str
    target_type: str | None
    target_id: int | None
    data: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Names:
    """Display names the page looked up in one query: people and communities by id."""

    users: Mapping[int, str] = dataclasses.field(default_factory=dict)
    communities: Mapping[int, str] = dataclasses.field(default_factory=dict)


def when(value: dt.datetime, zone: dt.tzinfo = dt.UTC, *, now: dt.datetime | None = None) -> str:
    """'3 Dec 14:00' in the reader's zone; the year too when it is not this year's."""
    local = value.astimezone(zone)
    this_year = (now or dt.datetime.now(dt.UTC)).astimezone(zone).year
    day = f"{local.day} {local:%b}" + ("" if local.year == this_year else f" {local.year}")
    return f"{day} {local:%H:%M}"


def until_text(value: Any, zone: dt.tzinfo = dt.UTC, *, now: dt.datetime | None = None) -> str:
    """'until 3 Dec 14:00', or 'indefinitely' for a suspension without an end."""
    moment = _instant(value)
    if moment is None or moment.year >= FOREVER_YEAR:
        return "indefinitely"
    return "until " + when(moment, zone, now=now)


def describe(entry: Entry, names: Names | None = None, zone: dt.tzinfo = dt.UTC) -> str:
    """One sentence for one entry, with no full stop (the page may add a time after it)."""
    names = names or Names()
    data = entry.data if isinstance(entry.data, dict) else {}
    actor = _actor(entry, names)
    say = _SENTENCES.get(entry.action)
    if say is not None:
        try:
            return f"{actor} {say(entry, data, names, zone)}"
        except (KeyError, TypeError, ValueError):
            pass  # an entry written by an older version: the words below still fit
    return f"{actor} {_generic(entry, names)}"


# --- who ---


def _actor(entry: Entry, names: Names) -> str:
    if entry.actor_id is not None and entry.actor_id in names.users:
        return names.users[entry.actor_id]
    label = entry.actor_label or "someone"
    if label.startswith("cli:"):
        return f"{label[4:] or 'an operator'} (command line)"
    if label == "cli":
        return "An operator (command line)"
    return label[:1].upper() + label[1:] if label in ("system", "retention") else label


def _person(user_id: Any, names: Names, username: Any = None) -> str:
    if isinstance(user_id, int) and user_id in names.users:
        return names.users[user_id]
    if isinstance(username, str) and username:
        return username
    return f"person #{user_id}" if isinstance(user_id, int) else "someone"


def _target(entry: Entry, data: dict[str, Any], names: Names) -> str:
    return _person(entry.target_id, names, data.get("username"))


def _possessive(name: str) -> str:
    return name + ("'" if name.endswith("s") else "'s")


def _community(community_id: Any, names: Names) -> str:
    if isinstance(community_id, int) and community_id in names.communities:
        return names.communities[community_id]
    return f"community #{community_id}" if isinstance(community_id, int) else "a community"


def _people(user_ids: Any, names: Names) -> str:
    ids = [u for u in user_ids if isinstance(u, int)] if isinstance(user_ids, list) else []
    if not ids:
        return "nobody"
    shown = [_person(u, names) for u in ids[:5]]
    if len(ids) > 5:
        shown.append(f"{len(ids) - 5} more")
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


# --- what ---


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and value:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _word(value: Any) -> str:
    """A stored value as a word: no quotes, brackets or True/False."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return TIERS.get(value, value.replace("_", " "))
    if isinstance(value, int | float):
        return f"{value:,}"
    return "something else"


Sentence = Callable[[Entry, dict[str, Any], Names, dt.tzinfo], str]


def _messaging(mode: str) -> Sentence:
    """Entries keep the switch's states: true/false (older entries) or on/off/read_only."""

    def say(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
        state = {"on": "on", "off": "off", "read_only": "read-only"}[mode]
        before = mode_of(data.get("before"))
        if data.get("before") in MODES:
            before = data["before"]
        already = before == mode
        verb = "made messaging" if mode == "read_only" else "turned messaging"
        return f"{verb} {state}" + (f" (it was already {state})" if already else "")

    return say


def _changed(what: str) -> Sentence:
    def say(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
        whose = _possessive(_target(entry, data, names))
        before, after = _word(data["before"]), _word(data["after"])
        return f"changed {whose} {what} from {before} to {after}"

    return say


def _active(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    verb = "re-enabled" if data["after"] is True else "disabled"
    return f"{verb} {_possessive(_target(entry, data, names))} account"


def _suspension_changed(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    who = _target(entry, data, names)
    if data.get("after") is None:
        return f"lifted {_possessive(who)} suspension"
    return f"suspended {who} {until_text(data['after'], zone, now=entry.created_at)}"


def _suspended(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    who = _target(entry, data, names)
    text = f"suspended {who} {until_text(data.get('until'), zone, now=entry.created_at)}"
    if isinstance(data.get("report_id"), int):
        text += f" over report {data['report_id']}"
    reason = data.get("reason")
    if isinstance(reason, str) and reason.strip():
        text += f": “{_short(reason)}”"
    return text


def _unsuspended(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    return f"lifted {_possessive(_target(entry, data, names))} suspension"


def _password_changed(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    if entry.actor_id == entry.target_id:
        return "changed their password"
    return f"changed {_possessive(_target(entry, data, names))} password"


def _deleted(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    """The account's name as it was (the account itself is anonymised now)."""
    former = data.get("username")
    who = former if isinstance(former, str) and former else _target(entry, data, names)
    what = (
        f"deleted their account ({who})"
        if entry.actor_id == entry.target_id
        else f"deleted {_possessive(who)} account"
    )
    if data.get("messages") == "remove":
        return what + " and its messages"
    return what + ", keeping its messages" if data.get("messages") == "keep" else what


def _resolved(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    text = RESOLUTIONS[data["action"]].format(
        report=entry.target_id,
        author=_person(data.get("author_id"), names),
        until=until_text(data.get("until"), zone, now=entry.created_at),
    )
    note = data.get("note")
    if isinstance(note, str) and note.strip():
        text += f": “{_short(note)}”"
    return text


def _admin_created(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    return f"created the admin account {_target(entry, data, names)}"


def _community_created(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    name = names.communities.get(entry.target_id or 0) or data["slug"]
    return f"created the community {name}"


def _members_added(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    return f"added {_people(data['user_ids'], names)} to {_community(entry.target_id, names)}"


def _member_removed(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    who = _person(data["user_id"], names)
    return f"removed {who} from {_community(entry.target_id, names)}"


def _retention(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    hid, purged = int(data.get("soft_deleted", 0)), int(data.get("purged", 0))
    verb = "counted" if data.get("dry_run") is True else "ran"
    text = f"{verb} retention: {hid:,} messages removed, {purged:,} purged"
    return text + (" (a dry run, nothing changed)" if data.get("dry_run") is True else "")


def _invitation(verb: str) -> Sentence:
    """Invitations: the address and the community; a tier only when one was given."""

    def sentence(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
        text = verb.format(
            email=data.get("email") or "someone",
            community=_community(data.get("community_id"), names),
        )
        tier = data.get("tier")
        return text + (f" as {TIERS.get(tier, tier)}" if isinstance(tier, str) else "")

    return sentence


def _short(text: str, limit: int = 120) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _generic(entry: Entry, names: Names) -> str:
    """An action without its own sentence: its name as words, and what it was done to."""
    words = " ".join(entry.action.replace("_", " ").replace(".", " ").split()) or "did something"
    text = f"did “{words}”"
    if entry.target_type == "user" and entry.target_id is not None:
        data = entry.data if isinstance(entry.data, dict) else {}
        text += f" to {_target(entry, data, names)}"
    elif entry.target_type == "community" and entry.target_id is not None:
        text += f" in {_community(entry.target_id, names)}"
    elif entry.target_type and entry.target_id is not None:
        text += f" on {entry.target_type.replace('_', ' ')} {entry.target_id}"
    return text


# --- the account's email (auth.account_email) ---


def _fixed(words: str) -> Sentence:
    def say(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
        return words

    return say


def _reset_requested(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    if entry.target_id is None:
        return "asked for a password reset for an address no account uses"
    return f"asked for a password reset link for {_target(entry, data, names)}"


def _email_changed(entry: Entry, data: dict[str, Any], names: Names, zone: dt.tzinfo) -> str:
    return f"changed their email address from {data['from']} to {data['to']}"


_SENTENCES: dict[str, Sentence] = {
    "messaging.enabled": _messaging("on"),
    "messaging.disabled": _messaging("off"),
    "messaging.read_only": _messaging("read_only"),
    "user.tier": _changed("tier"),
    "user.role": _changed("role"),
    "user.is_active": _active,
    "user.suspended_until": _suspension_changed,
    "user.suspended": _suspended,
    "user.unsuspended": _unsuspended,
    "user.password_changed": _password_changed,
    "user.deleted": _deleted,
    "report.resolved": _resolved,
    "admin.created": _admin_created,
    "community.created": _community_created,
    "community.members_added": _members_added,
    "community.member_removed": _member_removed,
    "retention.run": _retention,
    "invitation.sent": _invitation("invited {email} to {community}"),
    "invitation.accepted": _invitation("accepted the invitation to {community}"),
    "invitation.declined": _invitation("declined the invitation to {community}"),
    "invitation.revoked": _invitation("revoked the invitation of {email} to {community}"),
    "user.email_verified": _fixed("verified their email address"),
    "user.password_reset_requested": _reset_requested,
    "user.password_reset": _fixed("chose a new password with an emailed link"),
    "user.email_change_requested": _fixed("asked to change their email address"),
    "user.email_changed": _email_changed,
}
