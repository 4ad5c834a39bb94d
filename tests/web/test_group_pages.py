"""A group's info page with script off: who is in it and in what role, and each change (rename,
add, remove, leave, delete) as a plain form, a redirect, and the page as it then reads; each
refusal is the service's reason, in place, with its status."""

from __future__ import annotations

import re
from typing import Any

import pytest
from httpx import AsyncClient

from tests.support.people import Person, dm, group
from tests.web.support import csrf_of, post_form, signed_in

API = "/api/v1"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """Groups of at most four, so that "full" is in reach."""
    return settings.model_copy(update={"max_group_size": 4})


async def make_group(client: AsyncClient, owner: Person, *members: Person) -> int:
    return await group(client, owner, *members, title="Book club")


async def roster(client: AsyncClient, gid: int, who: Person) -> dict[int, str]:
    r = await client.get(f"{API}/groups/{gid}", headers=who.headers)
    return {p["id"]: p["role"] for p in r.json()["participants"]}


def members_on(page: str) -> list[tuple[str, str]]:
    """(name, role) of each member the page lists, in its order."""
    part = page[page.index('id="group-members"') : page.index("</ul>", page.index("group-members"))]
    return re.findall(
        r'class="person-name">([^<]+)</a>.*?class="role-tag" data-role="[a-z]+">([^<]+)<',
        part,
        re.S,
    )


def error_on(page: str) -> str:
    found = re.search(r'id="group-error">([^<]*)<', page)
    return found.group(1) if found else ""


async def act(c: Any, gid: int, action: str, **data: str) -> Any:
    return await post_form(c, f"/messages/{gid}/info", f"/messages/{gid}/group/{action}", data)


async def test_the_owner_sees_the_group_and_every_control(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free, people.free2)
    async with signed_in(app, "priv") as c:
        thread = (await c.get(f"/messages/{gid}")).text
        assert f'href="/messages/{gid}/info" id="group-info-link"' in thread
        assert f'href="/messages/{gid}/info" class="linklike" id="group-info-menu"' in thread
        page = (await c.get(f"/messages/{gid}/info")).text
    assert '<h1 id="group-name">Book club</h1>' in page and "3 members" in page
    assert members_on(page) == [("Priv", "Owner"), ("Free", "Member"), ("Free2", "Member")]
    assert 'href="/u/free"' in page and 'href="/u/free2"' in page
    assert 'id="group-title"' in page and 'value="Book club"' in page
    assert 'aria-label="Remove Free from the group"' in page
    assert 'aria-label="Remove Priv' not in page  # not oneself: that is "Leave group"
    assert "Add people" in page and "Leave group" in page and "Delete group" in page
    assert page.count("data-confirm=") == 4  # two removals, leaving, deleting


async def test_a_member_sees_the_group_but_only_leaving(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free, people.free2)
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{gid}/info")).text
    assert members_on(page)[0] == ("Priv", "Owner")
    assert "(you)" in page
    assert 'id="group-title"' not in page and "Remove" not in page
    assert "Add people" not in page and "Delete group" not in page
    assert "Leave group" in page


async def test_someone_outside_the_group_and_a_direct_conversation_have_no_info(
    app, client, people
) -> None:
    gid = await make_group(client, people.priv, people.free)
    conv = await dm(client, people.plus, people.free)
    async with signed_in(app, "plus") as c:
        for url in (f"/messages/{gid}/info", f"/messages/{conv['id']}/info"):
            r = await c.get(url)
            assert r.status_code == 404
        assert "This conversation does not exist or you are not in it</h1>" in r.text
        page = await c.get(f"/messages/{conv['id']}")
        r = await c.post(
            f"/messages/{gid}/group/rename", data={"title": "Mine", "csrf_token": csrf_of(page)}
        )
        assert r.status_code == 404
        assert "This conversation does not exist or you are not in it</h1>" in r.text
    assert (await client.get(f"{API}/groups/{gid}", headers=people.priv.headers)).json()[
        "title"
    ] == "Book club"


async def test_the_owner_renames_the_group(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        r = await act(c, gid, "rename", title="  Readers' circle ")
        assert (
            r.status_code == 303 and r.headers["location"] == f"/messages/{gid}/info?notice=renamed"
        )
        page = (await c.get(r.headers["location"])).text
        assert "Readers&#39; circle</h1>" in page and "name is saved" in page
        assert "Readers&#39; circle</h1>" in (await c.get(f"/messages/{gid}")).text

        r = await act(c, gid, "rename", title="   ")
        assert r.status_code == 422 and error_on(r.text) == "A group needs a title."
        r = await act(c, gid, "rename", title="x" * 121)
        assert r.status_code == 422 and "120" in error_on(r.text)
        assert 'value="' + "x" * 121 + '"' in r.text  # what was typed stays, to fix
    assert (await client.get(f"{API}/groups/{gid}", headers=people.free.headers)).json()[
        "title"
    ] == "Readers' circle"


async def test_a_member_is_refused_each_change_in_place(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free, people.free2)
    async with signed_in(app, "free") as c:
        r = await act(c, gid, "rename", title="Ours now")
        assert r.status_code == 403
        assert error_on(r.text) == "Only the group&#39;s owner and admins can do that."
        assert '<h1 id="group-name">Book club</h1>' in r.text
        r = await act(c, gid, "remove", user_id=str(people.free2.id))
        assert r.status_code == 403 and "owner and admins" in error_on(r.text)
        r = await act(c, gid, "add", member=str(people.plus.id))
        assert r.status_code == 403 and "owner and admins" in error_on(r.text)
        r = await act(c, gid, "delete")
        assert r.status_code == 403
        assert error_on(r.text) == "Only the group&#39;s owner can delete it."
    assert await roster(client, gid, people.priv) == {
        people.priv.id: "owner",
        people.free.id: "member",
        people.free2.id: "member",
    }


async def test_the_owner_finds_and_adds_someone(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        page = (await c.get(f"/messages/{gid}/info", params={"q": "plu"})).text
        assert f'name="member" value="{people.plus.id}"' in page
        assert f'name="member" value="{people.free.id}"' not in page  # in the group already
        r = await c.post(
            f"/messages/{gid}/group/add",
            data={"member": str(people.plus.id), "q": "plu", "csrf_token": csrf_of(page)},
        )
        assert r.status_code == 303 and r.headers["location"].endswith("?notice=added")
        page = (await c.get(r.headers["location"])).text
        assert ("Plus", "Member") in members_on(page) and "Added to the group." in page
    assert people.plus.id in await roster(client, gid, people.plus)


async def test_adding_is_refused_with_the_reason(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free, people.free2)
    async with signed_in(app, "plus") as c:  # plus blocks the owner
        await post_form(c, "/u/priv", "/u/priv/block", {})
    async with signed_in(app, "priv") as c:
        page = (await c.get(f"/messages/{gid}/info", params={"q": "plus"})).text
        assert 'data-code="blocked"' in page and f'value="{people.plus.id}"' not in page
        r = await act(c, gid, "add", member=str(people.plus.id))
        assert r.status_code == 403 and error_on(r.text) == "You cannot message this person."

        r = await act(c, gid, "add", member=str(people.outsider.id))  # another community
        assert r.status_code == 404 and error_on(r.text) == f"No such user: {people.outsider.id}."
        assert "Outsider" not in (await c.get(f"/messages/{gid}/info?q=outsider")).text

        r = await act(c, gid, "add", member=[str(people.manager.id), str(people.admin.id)])  # type: ignore[arg-type]
        assert r.status_code == 422 and error_on(r.text) == "A group can have at most 4 members."
        assert f'value="{people.manager.id}" checked' in r.text  # the ticks stay

        r = await act(c, gid, "add")
        assert r.status_code == 422 and error_on(r.text) == "Tick the people to add."
    assert set(await roster(client, gid, people.priv)) == {
        people.priv.id,
        people.free.id,
        people.free2.id,
    }


async def test_a_free_owner_is_told_why_they_cannot_add(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free)
    r = await client.patch(
        f"{API}/admin/users/{people.priv.id}", json={"tier": "free"}, headers=people.admin.headers
    )
    assert r.status_code == 200
    async with signed_in(app, "priv") as c:
        page = (await c.get(f"/messages/{gid}/info")).text
        assert 'id="add-refusal"' in page and "Free members can reply" in page
        assert "Add people" not in page and 'id="group-title"' in page  # renaming still works
        r = await act(c, gid, "add", member=str(people.plus.id))
        assert r.status_code == 403 and "Free members can reply" in error_on(r.text)


async def test_the_owner_removes_a_member_who_then_cannot_open_it(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free, people.free2)
    async with signed_in(app, "priv") as c:
        r = await act(c, gid, "remove", user_id=str(people.free2.id))
        assert r.status_code == 303 and r.headers["location"].endswith("?notice=removed")
        page = (await c.get(r.headers["location"])).text
        assert ("Free2", "Member") not in members_on(page) and "Removed from the group." in page
        assert f'name="member" value="{people.free2.id}"' in page  # one could add them back
        r = await act(c, gid, "remove", user_id=str(people.free2.id))  # again: gone already
        assert r.status_code == 404 and error_on(r.text) == "That person is not in this group."
        r = await act(c, gid, "remove", user_id="abc")
        assert r.status_code == 422 and error_on(r.text) == "Pick someone to remove."
    async with signed_in(app, "free2") as c:
        assert (await c.get(f"/messages/{gid}")).status_code == 404
        assert (await c.get(f"/messages/{gid}/info")).status_code == 404


async def test_nobody_removes_the_owner(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free)
    async with signed_in(app, "free") as c:
        r = await act(c, gid, "remove", user_id=str(people.priv.id))
        assert r.status_code == 403
    assert await roster(client, gid, people.priv) == {
        people.priv.id: "owner",
        people.free.id: "member",
    }


async def test_leaving_lands_on_the_list_with_a_notice(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free, people.plus)
    async with signed_in(app, "free") as c:
        r = await act(c, gid, "leave")
        assert r.status_code == 303 and r.headers["location"] == "/messages?notice=left"
        page = (await c.get(r.headers["location"])).text
        assert 'id="list-notice">You left the group.' in page
        assert f'data-conversation-id="{gid}"' not in page
    async with signed_in(app, "priv") as c:  # the owner leaves: plus may start, plus leads
        r = await act(c, gid, "leave")
        assert r.status_code == 303
    assert await roster(client, gid, people.plus) == {people.plus.id: "owner"}


async def test_the_owner_deletes_the_group_for_everyone(app, client, people) -> None:
    gid = await make_group(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        r = await act(c, gid, "delete")
        assert r.status_code == 303 and r.headers["location"] == "/messages?notice=group_deleted"
        assert "The group is deleted." in (await c.get(r.headers["location"])).text
    async with signed_in(app, "free") as c:
        assert (await c.get(f"/messages/{gid}")).status_code == 404
    r = await client.get(f"{API}/groups/{gid}", headers=people.free.headers)
    assert r.status_code == 404
