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
