"""The messaging database exists only once messaging is switched on: a server, the admin's
pages, the report queue and a member's export work without it, and switching on creates it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from httpx import ASGITransport, AsyncClient

from pigeon.accounts import communities
from pigeon.accounts import service as accounts
from pigeon.app import create_app
from pigeon.settings import Settings
from tests.web.support import sign_in

PASSWORD = "a long enough password"


async def test_nothing_makes_it_until_messaging_is_switched_on(tmp_path: Path, clock) -> None:
    data = tmp_path / "data"
    settings = Settings(
        data_dir=data,
        secret_key="messaging-db-test-" + "x" * 32,
        password_hash_time_cost=1,
        password_hash_memory_kib=64,
        rate_limits_enabled=False,
        tune_gc=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        rt = app.state.runtime
        async with rt.uow_scope() as uow:
            await communities.default_community(uow, settings)
            for name, role in (("boss", "admin"), ("ann", "member")):
                await accounts.create_user(
                    uow,
                    email=f"{name}@example.com",
                    username=name,
                    password=PASSWORD,
                    passwords=rt.passwords,
                    display_name=name.title(),
                    role=role,
                    tier="privileged",
                )
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as c:
            await sign_in(c, "boss", PASSWORD)
            for page in ("/admin", "/admin/reports", "/u/boss"):
                assert (await c.get(page)).status_code == 200, page
            assert (await c.get("/readyz")).status_code == 200
        async with AsyncClient(transport=transport, base_url="http://testserver") as api:
            r = await api.post("/api/v1/auth/login", json={"login": "boss", "password": PASSWORD})
            boss = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = await api.get("/api/v1/admin/reports", headers=boss)
            assert r.status_code == 200 and r.json() == []
            r = await api.get("/api/v1/me/export", headers=boss)
            assert r.status_code == 200
            with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
                exported = json.loads(archive.read("export.json"))
            assert exported["conversations"] == [] and exported["profile"]["username"] == "boss"
            assert not (data / "messages.db").exists()

            # the admin switches messaging on: now it exists, and members can write
            r = await api.put(
                "/api/v1/admin/settings/messaging", json={"enabled": True}, headers=boss
            )
            assert r.status_code == 200, r.text
            assert (data / "messages.db").exists()
            ann_id = (await api.get("/api/v1/admin/users?q=ann", headers=boss)).json()[0]["id"]
            r = await api.post(
                "/api/v1/conversations", json={"participant_ids": [ann_id]}, headers=boss
            )
            assert r.status_code in (200, 201), r.text
            r = await api.post(
                f"/api/v1/conversations/{r.json()['id']}/messages",
                json={"body": "Welcome"},
                headers=boss,
            )
            assert r.status_code == 201, r.text
