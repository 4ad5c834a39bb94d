"""The messaging switch: off on a fresh install, admins only, audited, seen by every process."""

import datetime as dt
import os
import subprocess
import sys

API = "/api/v1"


async def test_off_on_a_fresh_install(client, people_off):
    r = await client.get(f"{API}/admin/settings/messaging", headers=people_off.admin.headers)
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = await client.get(f"{API}/conversations", headers=people_off.priv.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "messaging_disabled"


async def test_only_admins_flip_it_and_every_change_is_audited(client, people_off):
    people = people_off
    for who in (people.manager, people.priv):
        r = await client.put(
            f"{API}/admin/settings/messaging", json={"enabled": True}, headers=who.headers
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    r = await client.put(
        f"{API}/admin/settings/messaging", json={"enabled": "yes"}, headers=people.admin.headers
    )
    assert r.status_code == 422
    r = await client.put(
        f"{API}/admin/settings/messaging", json={"enabled": True}, headers=people.admin.headers
    )
    assert r.json()["enabled"] is True and r.json()["updated_by"] == people.admin.id
    assert (
        await client.get(f"{API}/conversations", headers=people.priv.headers)
    ).status_code == 200
    await client.put(
        f"{API}/admin/settings/messaging", json={"enabled": False}, headers=people.admin.headers
    )
    r = await client.get(f"{API}/admin/audit", headers=people.admin.headers)
    actions = [
        (e["action"], e["actor_id"]) for e in r.json() if e["action"].startswith("messaging")
    ]
    assert actions == [
        ("messaging.disabled", people.admin.id),
        ("messaging.enabled", people.admin.id),
    ]
    assert all(e["created_at"] for e in r.json())


async def test_a_change_made_by_another_process_applies_within_a_second(
    client, people, settings, clock
):
    """The CLI (another process) turns it off; this server sees it once its 1 s cache lapses."""
    assert (
        await client.get(f"{API}/conversations", headers=people.priv.headers)
    ).status_code == 200
    env = {
        **os.environ,
        "PIGEON_DATA_DIR": str(settings.data_dir),
        "PIGEON_DATABASE_URL": settings.app_db_url,
        "PIGEON_MESSAGING_DATABASE_URL": settings.messaging_db_url,
    }
    out = subprocess.run(
        [sys.executable, "-m", "pigeon.cli", "messaging", "disable"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    clock.advance(dt.timedelta(seconds=1.01))
    r = await client.get(f"{API}/conversations", headers=people.priv.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "messaging_disabled"
    r = await client.get(
        f"{API}/admin/audit", params={"action": "messaging.disabled"}, headers=people.admin.headers
    )
    assert r.json()[0]["actor_label"].startswith("cli")
