"""The demo community: enough people and conversations to try every rule by hand."""

from __future__ import annotations

from pigeon.accounts import service as accounts
from pigeon.admin import service as admin
from pigeon.core.db import Databases
from pigeon.messaging import sending
from pigeon.messaging import service as messaging
from pigeon.settings import Settings

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
Messaging is switched on (by the demo admin)."""


async def load(dbs: Databases, settings: Settings, *, only_if_empty: bool) -> bool:
    async with dbs.app.write() as session:
        if only_if_empty and await accounts.count_users(session):
            return False
        store = await accounts.default_community(session)
        riverside = await accounts.create_community(
            session, name="Riverside Readers", slug="riverside"
        )
        ids: dict[str, int] = {}
        for username, name, tier, role, communities in PEOPLE:
            user = await accounts.create_user(
                session,
                email=f"{username}@demo.pigeon.test",
                username=username,
                password=PASSWORD,
                display_name=name,
                tier=tier,
                role=role,
                join_default="store" in communities,
            )
            ids[username] = user.id
            if "riverside" in communities:
                await accounts.add_members(session, riverside.id, [user.id])
        await accounts.add_members(session, riverside.id, [ids["admin"]])
        _ = store
    admin_user = ids["admin"]
    await admin.set_messaging(dbs, True, actor_id=admin_user, actor_label="admin")

    async with dbs.app.read() as session:
        people = await accounts.principals(session, ids.values())

    def as_(username: str) -> messaging.Ctx:
        return messaging.Ctx(dbs=dbs, settings=settings, viewer=people[ids[username]])

    async def say(username: str, conv_id: int, *lines: str) -> None:
        for line in lines:
            await sending.send_message(as_(username), conv_id, body=line)

    pete_fran, _ = await messaging.start_direct(as_("pete"), ids["fran"])
    await say("pete", pete_fran, "Hi Fran! Did the new Le Guin translation come in?")
    await say("fran", pete_fran, "It did, two copies on the shelf by the window.")
    await say("pete", pete_fran, "Great, I'll pick one up on Saturday.")

    maria_priya, _ = await messaging.start_direct(as_("maria"), ids["priya"])
    await say("maria", maria_priya, "Priya, your special order is ready for pickup.")

    club = await messaging.start_group(
        as_("priya"), [ids["pete"], ids["fran"], ids["maria"]], "Thursday book club"
    )
    await say("priya", club, "This month: The Dispossessed. Thoughts so far?")
    await say("maria", club, "We'll have tea and the back room from 7pm.")
    return True
