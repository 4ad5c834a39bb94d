"""Named personas for tests: who they are is the point of the test, not random data."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from pigeon.accounts import communities
from pigeon.accounts import service as accounts
from pigeon.admin import service as admin
from pigeon.core.runtime import Runtime
from pigeon.core.security import new_family_id

PASSWORD = "correct horse battery"

PERSONAS = {
    # name: (tier, role, communities)
    "admin": ("privileged_plus", "admin", ("store",)),
    "manager": ("privileged", "manager", ("store",)),
    "plus": ("privileged_plus", "member", ("store",)),
    "priv": ("privileged", "member", ("store",)),
    "free": ("free", "member", ("store",)),
    "free2": ("free", "member", ("store",)),
    "outsider": ("privileged", "member", ("riverside",)),
}


@dataclasses.dataclass
class Person:
    id: int
    username: str
    tier: str
    role: str
    token: str
    family_id: str  # the sign-in their token belongs to

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class People(dict[str, Person]):
    def __getattr__(self, name: str) -> Person:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def access_token(rt: Runtime, user_id: int, family_id: str | None = None) -> str:
    """An access token as sign-in issues them (naming a sign-in), valid from the clock's now."""
    return rt.tokens.issue(
        user_id=user_id,
        minutes=rt.settings.access_token_minutes,
        extra={"fid": family_id or new_family_id()},
    )


async def make_people(app: FastAPI, client: AsyncClient, *, messaging_on: bool = True) -> People:
    rt = app.state.runtime
    people = People()
    async with rt.uow_scope() as uow:
        await communities.default_community(uow)
        riverside = await communities.create_community(
            uow, None, name="Riverside", slug="riverside"
        )
        for name, (tier, role, belongs) in PERSONAS.items():
            user = await accounts.create_user(
                uow,
                email=f"{name}@example.com",
                username=name,
                password=PASSWORD,
                passwords=rt.passwords,
                display_name=name.capitalize(),
                tier=tier,
                role=role,
                join_default="store" in belongs,
            )
            if "riverside" in belongs:
                await communities.add_members(uow, None, riverside.id, [user.id])
            family = new_family_id()
            token = access_token(rt, user.id, family)
            people[name] = Person(user.id, name, tier, role, token, family)
    if messaging_on:
        async with rt.uow_scope() as uow:
            await admin.set_messaging(rt, uow, True, actor_id=people.admin.id, actor_label="admin")
    return people


async def dm(client: AsyncClient, a: Person, b: Person, *, accepted: bool = True) -> dict[str, Any]:
    """Start (or reuse) the direct conversation between a and b, as a. A first conversation
    with someone who never wrote to a is a message request to them: unless `accepted=False`,
    b accepts it, as between people who already talk (tests/messaging/test_requests.py)."""
    r = await client.post(
        "/api/v1/conversations", json={"participant_ids": [b.id]}, headers=a.headers
    )
    assert r.status_code in (200, 201), r.text
    if accepted:
        ok = await client.post(f"/api/v1/conversations/{r.json()['id']}/accept", headers=b.headers)
        assert ok.status_code == 200, ok.text
    return r.json()


async def group(
    client: AsyncClient, owner: Person, *members: Person, title: str = "Readers"
) -> int:
    """A group `owner` starts with `members`; its id."""
    r = await client.post(
        "/api/v1/groups",
        json={"title": title, "member_ids": [m.id for m in members]},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def send(client: AsyncClient, who: Person, conv_id: int, body: str, **extra: Any) -> Any:
    return await client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": body, **extra},
        headers=who.headers,
    )
