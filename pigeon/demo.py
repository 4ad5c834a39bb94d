"""The demo community: enough people and conversations to try every rule by hand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pigeon.accounts import communities, directory
from pigeon.accounts import service as accounts
from pigeon.admin import service as admin
from pigeon.core.runtime import Runtime
from pigeon.messaging import requests, sending
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx
from pigeon.messaging.send_tx import make_send_path

T = TypeVar("T")

PASSWORD = "pigeon-demo"

# username, display name, tier, role, communities ("store" is the default one)
PEOPLE = [
    ("admin", "Ada Admin", "privileged_plus", "admin", ["store"]),
    ("maria", "Maria Manager", "privileged", "manager", ["store"]),
    ("priya", "Priya Plus", "privileged_plus", "member", ["store"]),
    ("pete", "Pete Privileged", "privileged", "member", ["store"]),
    ("fran", "Fran Free", "free", "member", ["store"]),
    ("felix", "Felix Free", "free", "member", ["store"]),
    ("olga", "Olga Other", "privileged", "member", ["riverside"]),
]

SUMMARY = f"""[bold]Demo community loaded.[/bold] Every password is [bold]{PASSWORD}[/bold]:
  admin  (admin)          maria (manager)        priya (privileged_plus)
  pete   (privileged)     fran  (free)           felix (free)
  olga   (privileged, in the second community "Riverside Readers" only)
Messaging is switched on (by the demo admin); felix has a message request from pete."""


async def load(rt: Runtime, *, only_if_empty: bool) -> bool:
    async with rt.uow_scope() as uow:
        if only_if_empty and await accounts.count_users(uow.app):
            return False
        await communities.default_community(uow, rt.settings)
        riverside = await communities.create_community(
            uow, None, name="Riverside Readers", slug="riverside"
        )
        ids: dict[str, int] = {}
        for username, name, tier, role, belongs in PEOPLE:
            user = await accounts.create_user(
                uow,
                email=f"{username}@demo.pigeon.test",
                username=username,
                password=PASSWORD,
                passwords=rt.passwords,
                display_name=name,
                tier=tier,
                role=role,
                join_default="store" in belongs,
                settings=rt.settings,
                email_verified=True,  # their addresses go nowhere: no banner asks for a link
            )
            ids[username] = user.id
        riverside_people = [ids[u] for u, *_, where in PEOPLE if "riverside" in where]
        await communities.add_members(uow, None, riverside.id, [*riverside_people, ids["admin"]])
    async with rt.uow_scope() as uow:
        await admin.set_messaging(rt, uow, True, actor_id=ids["admin"], actor_label="admin")

    people = await directory.principals(rt, ids.values())
    sends = make_send_path(rt.dbs.messaging)
    try:

        async def as_(username: str, step: Callable[[Ctx], Awaitable[T]]) -> T:
            async with rt.uow_scope() as uow:
                return await step(Ctx(rt=rt, sends=sends, viewer=people[ids[username]], uow=uow))

        async def say(username: str, conv_id: int, *lines: str) -> None:
            for line in lines:
                async with rt.uow_scope() as uow:
                    ctx = Ctx(rt=rt, sends=sends, viewer=people[ids[username]], uow=uow)
                    await sending.send_message(ctx, conv_id, body=line)

        pete_fran, _ = await as_("pete", lambda ctx: messaging.start_direct(ctx, ids["fran"]))
        await say("pete", pete_fran, "Hi Fran! Did the new Le Guin translation come in?")
        await say("fran", pete_fran, "It did, two copies on the shelf by the window.")
        await say("pete", pete_fran, "Great, I'll pick one up on Saturday.")

        maria_priya, _ = await as_("maria", lambda ctx: messaging.start_direct(ctx, ids["priya"]))
        await say("maria", maria_priya, "Priya, your special order is ready for pickup.")
        await as_("priya", lambda ctx: requests.accept(ctx, maria_priya))

        # a message request: felix never wrote to pete, so it waits in felix's requests
        pete_felix, _ = await as_("pete", lambda ctx: messaging.start_direct(ctx, ids["felix"]))
        await say("pete", pete_felix, "Hi Felix, Maria said you collect old maps. Swap some?")

        members = [ids["pete"], ids["fran"], ids["maria"]]
        club = await as_(
            "priya", lambda ctx: messaging.start_group(ctx, members, "Thursday book club")
        )
        await say("priya", club, "This month: The Dispossessed. Thoughts so far?")
        await say("maria", club, "We'll have tea and the back room from 7pm.")
    finally:
        sends.close()
    return True
