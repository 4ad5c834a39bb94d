"""New conversation, profiles, blocks, navigation and the admin page, through plain HTTP."""

from __future__ import annotations

import re

from pigeon.accounts import blocks
from pigeon.messaging import eligibility
from pigeon.messaging import service as messaging
from tests.support.acting import acting_as
from tests.support.people import dm, send
from tests.web.support import csrf_of, post_form, signed_in


def person_row(page: str, username: str) -> str:
    start = page.index(f'href="/u/{username}" class="person-name"')
    return page[start : page.index("</li>", start)]


async def test_new_conversation_offers_whom_i_may_message_and_why_not(app, client, people) -> None:
    await dm(client, people.manager, people.plus)
    async with signed_in(app, "plus") as c:
        await post_form(c, "/u/free2", "/u/free2/block", {})
        page = (await c.get("/messages/new")).text
        assert "outsider" not in page  # not in my communities
        assert f'name="user_id" value="{people.priv.id}"' in person_row(page, "priv")
        assert "Open chat" in person_row(page, "manager")
        blocked = person_row(page, "free2")
        assert "You cannot message this person." in blocked and "user_id" not in blocked


async def test_starting_a_direct_conversation_opens_it_and_reuses_it(app, people) -> None:
    async with signed_in(app, "priv") as c:
        r = await post_form(c, "/messages/new", "/messages/new", {"user_id": str(people.free.id)})
        assert r.status_code == 303
        again = await post_form(
            c, "/messages/new", "/messages/new", {"user_id": str(people.free.id)}
        )
        assert again.headers["location"] == r.headers["location"]


async def test_starting_a_group_with_a_title(app, people) -> None:
    async with signed_in(app, "priv") as c:
        page = await c.get("/messages/new")
        r = await c.post(
            "/messages/new/group",
            data={
                "csrf_token": csrf_of(page),
                "member": [str(people.free.id), str(people.plus.id)],
                "title": "Book club",
            },
        )
        assert r.status_code == 303
        thread = (await c.get(r.headers["location"])).text
        assert "Book club" in thread and "3 members" in thread


async def test_free_members_see_why_they_cannot_start(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "free") as c:
        page = (await c.get("/messages/new")).text
        assert "Free members can reply to conversations but not start them." in page
        assert 'name="user_id"' not in page and "Start group" not in page
        assert f'href="/messages/{conv["id"]}#latest"' in person_row(page, "priv")
        r = await post_form(c, "/messages/new", "/messages/new", {"user_id": str(people.plus.id)})
        assert r.status_code == 403 and "Free members can reply" in r.text


async def test_eligibility_agrees_with_the_service(app, client, people) -> None:
    """For every pair of personas, the page's answer is what starting would do."""
    names = ["admin", "manager", "plus", "priv", "free", "free2", "outsider"]
    rt, sends = app.state.runtime, app.state.sends
    async with acting_as(rt, sends, people.free2.id) as ctx:
        await blocks.add_block(ctx.uow, ctx.viewer, people.plus.id)
    await dm(client, people.manager, people.free)
    for who in names:
        async with acting_as(rt, sends, people[who].id) as ctx:
            answers = await eligibility.for_people(ctx, [people[n].id for n in names])
        for other in names:
            if other == who:
                continue
            said = answers[people[other].id]
            try:
                async with acting_as(rt, sends, people[who].id) as ctx:
                    await messaging.start_direct(ctx, people[other].id)
                did = None
            except Exception as exc:  # the service's refusal
                did = getattr(exc, "code", "error")
            assert (said.code if not said.allowed else None) == did, (who, other, said)


async def test_profile_message_button_rules(app, client, people) -> None:
    async with signed_in(app, "priv") as c:
        own = (await c.get("/u/priv")).text
        assert 'id="message-button"' not in own and "Block" not in own
        other = (await c.get("/u/free")).text
        assert 'id="message-button"' in other and 'action="/u/free/block"' in other
        assert (await c.get("/u/outsider")).status_code == 404
        r = await post_form(c, "/u/free", "/u/free/message", {})
        assert r.status_code == 303
        conv_url = r.headers["location"]
        assert f'href="{conv_url}#latest" id="message-button"' in (await c.get("/u/free")).text
    async with signed_in(app, "admin") as c:
        outsider = (await c.get("/u/outsider")).text  # admins see everyone, but no button
        assert "Outsider" in outsider and 'id="message-button"' not in outsider


async def test_block_and_unblock_from_the_profile(app, client, people) -> None:
    async with signed_in(app, "priv") as c:
        r = await post_form(c, "/u/free", "/u/free/block", {})
        assert r.headers["location"] == "/u/free?notice=blocked"
        page = (await c.get("/u/free")).text
        assert "Unblock" in page and 'id="message-button"' not in page
        assert "You cannot message this person." in page
        await post_form(c, "/u/free", "/u/free/unblock", {})
        assert 'id="message-button"' in (await c.get("/u/free")).text


async def test_messaging_off_hides_every_entry_point(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "hi")
    async with signed_in(app, "admin") as admin:
        r = await post_form(
            admin, "/admin", "/admin/messaging/toggle", {"enabled": "off", "confirm": "yes"}
        )
        assert r.headers["location"] == "/admin?notice=messaging_off"
        page = (await admin.get(r.headers["location"])).text
        assert "Direct messaging is off." in page and "Turn messaging on" in page
        assert "Admin turned messaging off" in page  # the audit log
    async with signed_in(app, "priv") as c:
        profile = (await c.get("/u/free")).text
        assert 'id="nav-messages"' not in profile and 'id="message-button"' not in profile
        r = await c.get(f"/messages/{conv['id']}")
        assert r.status_code == 403 and "Messaging is switched off" in r.text
        assert 'id="nav-messages"' not in (await c.get("/messages/new")).text
    async with signed_in(app, "admin") as admin:
        await post_form(
            admin, "/admin", "/admin/messaging/toggle", {"enabled": "on", "confirm": "yes"}
        )
    async with signed_in(app, "priv") as c:
        assert 'id="nav-messages"' in (await c.get("/u/free")).text


async def test_admin_page_is_for_admins(app, people) -> None:
    async with signed_in(app, "manager") as c:
        r = await c.get("/admin")
        assert r.status_code == 403 and "Only admins" in r.text
        assert 'href="/admin"' not in (await c.get("/messages")).text


async def test_admin_edits_tier_and_role(app, client, people) -> None:
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin")).text
        assert re.search(rf'id="user-{people.free.id}"', page)
        r = await c.post(
            f"/admin/users/{people.free.id}",
            data={"tier": "privileged", "role": "member", "csrf_token": csrf_of(page)},
        )
        assert r.status_code == 303
        after = (await c.get("/admin")).text
        assert "Admin changed Free&#39;s tier from free to privileged" in after
        bad = await c.post(
            f"/admin/users/{people.free.id}",
            data={"tier": "gold", "role": "member", "csrf_token": csrf_of(page)},
        )
        assert bad.status_code == 422
        me = await c.post(
            f"/admin/users/{people.admin.id}",
            data={"tier": "privileged_plus", "role": "member", "csrf_token": csrf_of(page)},
        )
        assert me.status_code == 403 and "cannot demote" in me.text
    r = await client.get("/api/v1/auth/me", headers=people.free.headers)
    assert r.json()["tier"] == "privileged"


async def test_members_edit_their_own_name_and_bio(app, people) -> None:
    async with signed_in(app, "free") as c:
        r = await post_form(
            c, "/u/free", "/u/free/edit", {"display_name": "Frida F.", "bio": "Crime novels <3"}
        )
        assert r.headers["location"] == "/u/free?notice=saved"
        page = (await c.get("/u/free")).text
        assert "Frida F." in page and "Crime novels &lt;3" in page
        bad = await post_form(c, "/u/free", "/u/free/edit", {"display_name": " ", "bio": ""})
        assert bad.status_code == 422 and "must not be empty" in bad.text
        other = await post_form(c, "/u/free", "/u/priv/edit", {"display_name": "X", "bio": ""})
        assert other.status_code == 403 and "only change your own profile" in other.text
