"""What the people table and a profile show of a suspension: its state, and the Suspend or Lift
form for the staff whom `moderation.can_suspend` allows (the service decides again on submit).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from fastapi import Request

from pigeon.accounts import directory
from pigeon.admin import moderation
from pigeon.admin.audit_text import until_text
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.web.render import reader_zone

# the durations the pages offer: form value -> (label, days; None until lifted)
DURATIONS: dict[str, tuple[str, int | None]] = {
    "1d": ("1 day", 1),
    "7d": ("7 days", 7),
    "30d": ("30 days", 30),
    "lifted": ("until lifted", None),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Suspension:
    user_id: int
    name: str
    until: dt.datetime | None  # set while suspended
    text: str  # "Suspended until 3 Dec 14:00" / "Suspended indefinitely" / ""
    may: bool  # the viewer may suspend or lift
    back: str  # where the form returns to

    @property
    def active(self) -> bool:
        return self.until is not None


def state(
    request: Request, target: Principal, *, may: bool, back: str, now: dt.datetime
) -> Suspension:
    until = target.suspended_until
    active = until is not None and until > now
    text = ""
    if active:
        text = "Suspended " + until_text(until, reader_zone(request), now=now)
    return Suspension(
        user_id=target.id,
        name=target.display_name,
        until=until if active else None,
        text=text,
        may=may,
        back=back,
    )


async def for_people(
    request: Request, rt: Runtime, viewer: Principal, user_ids: Iterable[int], *, back: str
) -> dict[int, Suspension]:
    """The state of each of these people, read in one go, for the people table."""
    found = await directory.principals(rt, user_ids)
    now = rt.clock.now()
    return {
        uid: state(
            request,
            p,
            may=moderation.can_suspend(viewer, p),
            back=f"{back}#user-{uid}",
            now=now,
        )
        for uid, p in found.items()
    }


async def for_profile(
    request: Request, rt: Runtime, viewer: Principal, user_id: int, username: str
) -> Suspension | None:
    """A profile shows it to the staff who may act on the person, and to admins."""
    if not viewer.is_staff or viewer.id == user_id:
        return None
    target = await directory.get_principal(rt, user_id)
    if target is None:
        return None
    may = moderation.can_suspend(viewer, target)
    if not may and not viewer.is_admin:
        return None
    return state(request, target, may=may, back=f"/u/{username}", now=rt.clock.now())


def duration_until(choice: str, now: dt.datetime) -> tuple[bool, dt.datetime | None]:
    """(known choice, end): the form's duration as the service's `until` (None: until lifted)."""
    found = DURATIONS.get(choice)
    if found is None:
        return False, None
    days = found[1]
    return True, (now + dt.timedelta(days=days) if days is not None else None)
