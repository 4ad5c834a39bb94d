async def test_health(client):
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await client.get("/readyz")
    assert r.json()["checks"] == {"app": True, "messaging": True, "broker": True}


async def test_people_can_talk(client, people):
    from tests.support.people import dm, send

    conv = await dm(client, people.priv, people.free)
    r = await send(client, people.priv, conv["id"], "hello")
    assert r.status_code == 201
    r = await client.get(
        f"/api/v1/conversations/{conv['id']}/messages", headers=people.free.headers
    )
    assert [m["body"] for m in r.json()] == ["hello"]


async def test_two_apps_in_one_process_each_answer_from_their_own_install(
    settings, tmp_path, sqlite_template
):
    """Every app a process creates shares one build of the routes (`app.shared_routes`):
    what a route answers still comes from the app it was asked through."""
    from httpx import ASGITransport, AsyncClient

    from pigeon.app import create_app, shared_routes
    from tests.conftest import copy_template

    other_data = tmp_path / "other"
    other_data.mkdir()
    copy_template(sqlite_template, other_data)
    other_settings = settings.model_copy(
        update={
            "data_dir": other_data,
            "database_url": None,
            "messaging_database_url": None,
            "registration": "invite",
        }
    )
    one, other = create_app(settings), create_app(other_settings)
    for app in (one, other):
        assert all(any(route is mine for mine in app.routes) for route in shared_routes())
    signup = {"email": "ann@example.com", "username": "ann", "password": "a long passphrase"}
    async with (
        one.router.lifespan_context(one),
        other.router.lifespan_context(other),
        AsyncClient(transport=ASGITransport(app=one), base_url="http://one") as c1,
        AsyncClient(transport=ASGITransport(app=other), base_url="http://other") as c2,
    ):
        assert (await c1.post("/api/v1/auth/register", json=signup)).status_code == 201
        refused = await c2.post("/api/v1/auth/register", json=signup)
        assert refused.json()["error"]["code"] == "registration_closed", refused.text
        login = {"login": "ann", "password": signup["password"]}
        assert (await c1.post("/api/v1/auth/login", json=login)).status_code == 200
        assert (await c2.post("/api/v1/auth/login", json=login)).status_code == 401
        assert (await c1.get("/openapi.json")).json() == (await c2.get("/openapi.json")).json()
