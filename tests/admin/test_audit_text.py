"""The audit log as an admin reads it on the page: sentences, never stored values as Python
writes them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pigeon.admin.audit_text import Names, describe, until_text, when

AT = dt.datetime(2030, 11, 20, 9, 30, tzinfo=dt.UTC)
NAMES = Names(users={1: "Ada", 2: "Bob", 3: "Cy"}, communities={7: "Riverside"})


@dataclasses.dataclass
class Entry:
    action: str
    data: dict[str, Any]
    actor_id: int | None = 1
    actor_label: str = "ada"
    target_type: str | None = "user"
    target_id: int | None = 2
    created_at: dt.datetime = AT


@pytest.mark.parametrize(
    ("entry", "sentence"),
    [
        (
            Entry("messaging.disabled", {"before": True, "after": False}, target_type="setting"),
            "Ada turned messaging off",
        ),
        (
            Entry("messaging.enabled", {"before": False, "after": True}, target_type="setting"),
            "Ada turned messaging on",
        ),
        (
            Entry("messaging.enabled", {"before": True, "after": True}, target_type="setting"),
            "Ada turned messaging on (it was already on)",
        ),
        (
            Entry("user.tier", {"before": "free", "after": "privileged", "username": "bob"}),
            "Ada changed Bob's tier from free to privileged",
        ),
        (
            Entry("user.tier", {"before": "privileged", "after": "privileged_plus"}),
            "Ada changed Bob's tier from privileged to privileged plus",
        ),
        (
            Entry("user.role", {"before": "member", "after": "manager"}),
            "Ada changed Bob's role from member to manager",
        ),
        (Entry("user.is_active", {"before": True, "after": False}), "Ada disabled Bob's account"),
        (Entry("user.is_active", {"before": False, "after": True}), "Ada re-enabled Bob's account"),
        (
            Entry("user.suspended", {"until": "2030-12-03T14:00:00+00:00", "reason": ""}),
            "Ada suspended Bob until 3 Dec 14:00",
        ),
        (
            Entry("user.suspended", {"until": "9999-12-31T00:00:00+00:00", "reason": "spam"}),
            "Ada suspended Bob indefinitely: “spam”",
        ),
        (
            Entry("user.suspended", {"until": "2031-01-02T08:05:00+00:00", "report_id": 4}),
            "Ada suspended Bob until 2 Jan 2031 08:05 over report 4",
        ),
        (
            Entry("user.unsuspended", {"until": None, "username": "bob"}),
            "Ada lifted Bob's suspension",
        ),
        (
            Entry("user.password_changed", {"username": "ada"}, target_id=1),
            "Ada changed their password",
        ),
        (
            Entry("user.deleted", {"username": "ada", "messages": "keep"}, target_id=1),
            "Ada deleted their account (ada), keeping its messages",
        ),
        (
            Entry("user.deleted", {"username": "bob", "messages": "remove"}),
            "Ada deleted bob's account and its messages",
        ),
        (
            Entry("user.suspended_until", {"before": None, "after": "2030-12-03T14:00:00+00:00"}),
            "Ada suspended Bob until 3 Dec 14:00",
        ),
        (
            Entry("user.suspended_until", {"before": "2030-12-03T14:00:00+00:00", "after": None}),
            "Ada lifted Bob's suspension",
        ),
        (
            Entry(
                "report.resolved",
                {"action": "dismiss", "author_id": 2, "note": ""},
                target_type="report",
                target_id=12,
            ),
            "Ada dismissed report 12",
        ),
        (
            Entry(
                "report.resolved",
                {"action": "delete_message", "author_id": 2, "note": "rude"},
                target_type="report",
                target_id=12,
            ),
            "Ada deleted the message of report 12: “rude”",
        ),
        (
            Entry(
                "report.resolved",
                {"action": "suspend_author", "author_id": 3, "until": None},
                target_type="report",
                target_id=12,
            ),
            "Ada suspended Cy indefinitely over report 12",
        ),
        (
            Entry(
                "admin.created",
                {"username": "root"},
                actor_id=None,
                actor_label="cli:ops",
                target_id=50,
            ),
            "ops (command line) created the admin account root",
        ),
        (
            Entry(
                "community.created",
                {"slug": "riverside"},
                target_type="community",
                target_id=7,
            ),
            "Ada created the community Riverside",
        ),
        (
            Entry(
                "community.members_added",
                {"user_ids": [2, 3]},
                target_type="community",
                target_id=7,
            ),
            "Ada added Bob and Cy to Riverside",
        ),
        (
            Entry(
                "invitation.sent",
                {"email": "new@example.com", "community_id": 7, "tier": "privileged_plus"},
                target_type="invitation",
                target_id=4,
            ),
            "Ada invited new@example.com to Riverside as privileged plus",
        ),
        (
            Entry(
                "invitation.accepted",
                {"email": "ada@example.com", "community_id": 7, "tier": None},
                target_type="invitation",
                target_id=4,
            ),
            "Ada accepted the invitation to Riverside",
        ),
        (
            Entry(
                "community.member_removed",
                {"user_id": 3},
                target_type="community",
                target_id=8,
            ),
            "Ada removed Cy from community #8",
        ),
        (
            Entry(
                "retention.run",
                {"soft_deleted": 3, "purged": 1200, "dry_run": False},
                actor_id=None,
                actor_label="system",
                target_type="retention",
                target_id=None,
            ),
            "System ran retention: 3 messages removed, 1,200 purged",
        ),
    ],
)
def test_every_recorded_action_reads_as_a_sentence(entry: Entry, sentence: str) -> None:
    assert describe(entry, NAMES) == sentence


def test_names_fall_back_to_what_the_entry_kept() -> None:
    entry = Entry("user.role", {"before": "member", "after": "owner", "username": "zed"})
    entry.target_id, entry.actor_id = 99, None
    assert describe(entry, NAMES) == "ada changed zed's role from member to owner"


def test_unknown_actions_and_odd_data_never_show_python_values() -> None:
    odd = Entry("badge.awarded", {"before": {"a": [1]}, "after": None, "x": True})
    text = describe(odd, NAMES)
    assert text == "Ada did “badge awarded” to Bob"
    broken = Entry("user.tier", {"after": ["x"]})  # no "before": an older entry's shape
    text = describe(broken, NAMES)
    assert text == "Ada did “user tier” to Bob"
    weird = Entry("user.tier", {"before": None, "after": {"k": 1}})
    text = describe(weird, NAMES)
    for python in ("None", "True", "False", "{", "[", "'"):
        assert python not in text.replace("Bob's", "Bob")


def test_times_are_in_the_readers_zone() -> None:
    moment = dt.datetime(2030, 12, 3, 14, 0, tzinfo=dt.UTC)
    assert when(moment, ZoneInfo("Europe/Berlin"), now=AT) == "3 Dec 15:00"
    assert until_text(moment.isoformat(), now=AT) == "until 3 Dec 14:00"
    assert until_text(None) == "indefinitely"
