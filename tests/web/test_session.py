"""Sign in, register, sign out, CSRF: the pages' session, through plain HTTP."""

from __future__ import annotations

from tests.support.people import dm
from tests.web.support import browser, csrf_of, sign_in, signed_in


async def test_signing_in_sets_a_protected_session_cookie(app, people) -> None:
    async with browser(app) as c:
        r = await sign_in(c, "priv")
        cookie = r.headers["set-cookie"]
        assert "pigeon_session=" in cookie
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http here; https gets Secure
        page = await c.get("/messages")
        assert page.status_code == 200
        assert "Messages" in page.text


async def test_wrong_password_keeps_the_login_and_says_why(app, people) -> None:
    async with browser(app) as c:
        page = await c.get("/login")
        r = await c.post(
            "/login", data={"login": "priv", "password": "nope-nope", "csrf_token": csrf_of(page)}
        )
        assert r.status_code == 400
        assert "Wrong login or password." in r.text
        assert 'value="priv"' in r.text


async def test_pages_need_a_session_and_send_people_to_sign_in(app, people) -> None:
    async with browser(app) as c:
        r = await c.get("/messages/new")
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2Fmessages%2Fnew"


async def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(app, people) -> None:
    async with browser(app) as c:
        page = await c.get("/login")
        form = {"login": "priv", "password": "correct horse battery", "csrf_token": csrf_of(page)}
        r = await c.post("/login", data={**form, "next": "//evil.example/x"})
        assert r.headers["location"] == "/messages"
    async with browser(app) as c:
        page = await c.get("/login")
        form["csrf_token"] = csrf_of(page)
        r = await c.post("/login", data={**form, "next": "/messages/new"})
        assert r.headers["location"] == "/messages/new"


async def test_forms_without_the_csrf_token_are_refused(app, people) -> None:
    async with browser(app) as c:
        await c.get("/login")
        r = await c.post("/login", data={"login": "priv", "password": "correct horse battery"})
        assert r.status_code == 403
        assert "expired" in r.text
    async with signed_in(app, "admin") as c:
        r = await c.post("/admin/messaging/toggle", data={"enabled": "off", "csrf_token": "x"})
        assert r.status_code == 403
        assert "text/html" in r.headers["content-type"]


async def test_sign_out_ends_the_session_for_good(app, people) -> None:
    async with signed_in(app, "priv") as c:
        stolen = c.cookies.get("pigeon_session")
        page = await c.get("/messages")
        r = await c.post("/logout", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303
        assert (await c.get("/messages")).status_code == 303
    async with browser(app) as other:
        other.cookies.set("pigeon_session", stolen)
        r = await other.get("/messages")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_register_signs_the_new_member_in(app, people) -> None:
    async with browser(app) as c:
        page = await c.get("/register")
        r = await c.post(
            "/register",
            data={
                "email": "new@example.com",
                "username": "newbie",
                "display_name": "New Bie",
                "password": "long enough pass",
                "csrf_token": csrf_of(page),
            },
        )
        assert r.status_code == 303
        assert "New Bie" in (await c.get("/u/newbie")).text


async def test_register_explains_bad_input_and_keeps_it(app, people) -> None:
    async with browser(app) as c:
        page = await c.get("/register")
        r = await c.post(
            "/register",
            data={
                "email": "x@example.com",
                "username": "priv",
                "password": "long enough pass",
                "csrf_token": csrf_of(page),
            },
        )
        assert r.status_code == 400
        assert "That username is taken." in r.text
        assert 'value="x@example.com"' in r.text


async def test_closed_registration_is_respected(app, people) -> None:
    app.state.settings.registration = "invite"
    async with browser(app) as c:
        page = await c.get("/register")
        assert "Registration is closed" in page.text
        r = await c.post(
            "/register",
            data={
                "email": "n@example.com",
                "username": "nobody",
                "password": "long enough pass",
                "csrf_token": csrf_of(page),
            },
        )
        assert r.status_code == 403
    async with browser(app) as c:
        await c.get("/login")
        assert (await c.get("/u/nobody")).status_code == 303  # not signed in: no account made


async def test_the_json_api_with_the_cookie_needs_the_csrf_header(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "free") as c:
        page = await c.get(f"/messages/{conv['id']}")
        url = f"/api/v1/conversations/{conv['id']}/messages"
        refused = await c.post(url, json={"body": "hi"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_failed"
        ok = await c.post(url, json={"body": "hi"}, headers={"X-CSRF-Token": csrf_of(page)})
        assert ok.status_code == 201
    # bearer clients are untouched by the cookie rules
    r = await client.post(url, json={"body": "hello"}, headers=people.priv.headers)
    assert r.status_code == 201


async def test_api_errors_stay_json_and_pages_get_html(app, client, people) -> None:
    r = await client.get("/api/v1/conversations/999999", headers=people.priv.headers)
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "conversation_not_found"
    async with signed_in(app, "priv") as c:
        page = await c.get("/messages/999999")
        assert page.status_code == 404
        assert "text/html" in page.headers["content-type"]
        assert "This conversation does not exist or you are not in it" in page.text


async def test_a_mangled_page_address_is_a_friendly_not_found(app, people) -> None:
    async with signed_in(app, "priv") as c:
        r = await c.get("/messages/not-a-number")
        assert r.status_code == 404 and "This page does not exist" in r.text


async def test_page_sign_in_is_rate_limited_like_the_api(app, people) -> None:
    from pigeon.app import create_app

    limits = {"rate_limits_enabled": True, "rate_login_per_minute": 2}
    limited = create_app(app.state.settings.model_copy(update=limits))
    async with limited.router.lifespan_context(limited), browser(limited) as c:
        page = await c.get("/login")
        form = {"login": "priv", "password": "wrong-wrong", "csrf_token": csrf_of(page)}
        assert (await c.post("/login", data=form)).status_code == 400
        assert (await c.post("/login", data=form)).status_code == 400
        r = await c.post("/login", data=form)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "Too many sign-in attempts" in r.text and 'value="priv"' in r.text


async def test_typing_the_sign_out_address_asks_before_signing_out(app, people) -> None:
    async with signed_in(app, "priv") as c:
        page = await c.get("/logout")
        assert page.status_code == 200 and 'action="/logout"' in page.text
        assert (await c.get("/messages")).status_code == 200  # still signed in


async def test_the_session_cookie_is_secure_over_https(app, people) -> None:
    from httpx import ASGITransport, AsyncClient

    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="https://testserver") as c:
        r = await sign_in(c, "priv")
        assert "Secure" in r.headers["set-cookie"]
