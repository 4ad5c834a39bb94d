"""Subscribing devices through the API: what is accepted, what is refused and why, whose
devices one sees and removes."""

from __future__ import annotations

from typing import Any

import pytest

from pigeon.settings import P256_ORDER, Settings
from tests.support.push import Browser, PushService, b64url

API = "/api/v1/push/subscriptions"
ANDROID_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:130.0) Gecko/130.0 Firefox/130.0"


def subscription(endpoint: str, **keys: str) -> dict[str, Any]:
    body = Browser().subscription(endpoint)
    body["keys"].update(keys)
    return body


async def remove(client: Any, who: Any, endpoint: str) -> Any:
    return await client.request("DELETE", API, json={"endpoint": endpoint}, headers=who.headers)


async def test_the_public_key_is_a_p256_point_and_stays_across_restarts(
    client, settings: Settings
) -> None:
    from pigeon.push import keys

    r = await client.get("/api/v1/push/key")
    assert r.status_code == 200
    key = r.json()["public_key"]
    assert len(key) == 87 and "=" not in key  # 65 bytes, base64url without padding
    stored = settings.data_dir / "vapid.key"
    assert stored.stat().st_mode & 0o777 == 0o600
    again = settings.model_copy()
    assert keys.public_key(again) == key


async def test_subscribe_list_refresh_and_unsubscribe(client, people, push_service) -> None:
    endpoint = push_service.endpoint("phone")
    first = await client.post(
        API,
        json=subscription(endpoint),
        headers={
            **people.free.headers,
            "User-Agent": "Mozilla/5.0 (Linux; Android 14) Firefox/130.0",
        },
    )
    assert first.status_code == 201, first.text
    assert first.json()["user_agent"] == "Firefox on Android"
    again = await client.post(API, json=subscription(endpoint), headers=people.free.headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    mine = await client.get(API, headers=people.free.headers)
    assert [d["endpoint"] for d in mine.json()] == [endpoint]
    assert (await client.get(API, headers=people.priv.headers)).json() == []
    # someone else cannot remove it; its owner can, once
    other = await client.request(
        "DELETE", API, json={"endpoint": endpoint}, headers=people.priv.headers
    )
    assert other.status_code == 404 and other.json()["error"]["code"] == "device_not_found"
    gone = await client.request(
        "DELETE", API, json={"endpoint": endpoint}, headers=people.free.headers
    )
    assert gone.status_code == 204
    assert (await client.get(API, headers=people.free.headers)).json() == []


async def test_a_device_belongs_to_whoever_subscribed_it_last(client, people, push_service) -> None:
    endpoint = push_service.endpoint("shared-tablet")
    await client.post(API, json=subscription(endpoint), headers=people.free.headers)
    r = await client.post(API, json=subscription(endpoint), headers=people.priv.headers)
    assert r.status_code == 200
    assert (await client.get(API, headers=people.free.headers)).json() == []
    assert len((await client.get(API, headers=people.priv.headers)).json()) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"p256dh": b64url(b"\x04" + b"\x01" * 64)}, "keys.p256dh"),  # not on the curve
        ({"p256dh": "not base64 at all!" * 5}, "keys.p256dh"),
        ({"auth": b64url(b"\x00" * 15)}, "keys.auth"),
        ({"auth": "%%%%%%%%%%%%%%%%%%%%%%"}, "keys.auth"),
    ],
)
async def test_keys_of_the_wrong_shape_are_refused(
    client, people, push_service, change: dict[str, str], field: str
) -> None:
    r = await client.post(
        API, json=subscription(push_service.endpoint("x"), **change), headers=people.free.headers
    )
    assert r.status_code == 422
    assert field in r.json()["error"]["fields"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.com/send/abc",
        "https://127.0.0.1/send/abc",
        "https://10.1.2.3/send/abc",
        "https://[::1]/x",
        "https://localhost/x",
        "https://user:pw@push.example.com/x",
        "ftp://push.example.com/x",
        "https://push.example.com/x y",
        "https://push.example.com/" + "a" * 2100,
    ],
)
async def test_endpoints_that_are_not_push_services_are_refused(
    app, client, people, endpoint: str
) -> None:
    app.state.runtime.settings.push_allow_insecure_endpoints = False
    r = await client.post(API, json=subscription(endpoint), headers=people.free.headers)
    assert r.status_code == 422, r.text
    assert "endpoint" in r.json()["error"]["fields"]


async def test_an_https_push_service_is_accepted_by_default(app, client, people) -> None:
    app.state.runtime.settings.push_allow_insecure_endpoints = False
    endpoint = "https://fcm.googleapis.com/fcm/send/abc:def"
    r = await client.post(API, json=subscription(endpoint), headers=people.free.headers)
    assert r.status_code == 201, r.text


async def test_signing_in_is_needed(client, push_service: PushService) -> None:
    r = await client.post(API, json=subscription(push_service.endpoint("x")))
    assert r.status_code == 401
    assert (await client.get(API)).status_code == 401
    assert (await client.get("/api/v1/push/settings")).status_code == 401


async def test_deleting_the_account_forgets_its_devices(app, client, people, push_service) -> None:
    from tests.support.people import PASSWORD

    await client.post(
        API, json=subscription(push_service.endpoint("phone")), headers=people.free.headers
    )
    r = await client.request(
        "DELETE",
        "/api/v1/me",
        json={"password": PASSWORD, "messages": "keep"},
        headers=people.free.headers,
    )
    assert r.status_code == 204, r.text
    from pigeon.push import service as push

    async with app.state.runtime.dbs.app.read() as session:
        assert list(await push.devices(session, people.free.id)) == []


async def test_the_push_api_is_in_the_openapi_document(client) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/api/v1/push/subscriptions"]) == {"get", "post", "delete"}
    assert "422" in paths["/api/v1/push/subscriptions"]["post"]["responses"]
    assert {"get", "put"} <= set(paths["/api/v1/push/settings"])
    assert "get" in paths["/api/v1/push/key"]


@pytest.mark.parametrize(
    "key",
    [
        "not-a-key",
        b64url(bytes(32)),  # raw, but zero
        b64url(P256_ORDER.to_bytes(32, "big")),  # raw, but not below the curve's order
        b64url(b"\x01" * 31),  # too short to be raw, and not DER
    ],
)
async def test_a_configured_key_that_is_not_one_stops_the_server(
    settings: Settings, key: str
) -> None:
    from pydantic import SecretStr

    from pigeon.app import create_app

    bad = settings.model_copy(update={"vapid_private_key": SecretStr(key)})
    app = create_app(bad)
    with pytest.raises(RuntimeError, match="PIGEON_VAPID_PRIVATE_KEY"):
        async with app.router.lifespan_context(app):
            pass


async def test_a_configured_key_is_used_and_nothing_is_written(settings: Settings) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from pydantic import SecretStr

    from pigeon.push import keys

    private = ec.generate_private_key(ec.SECP256R1())
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    mine = settings.model_copy(update={"vapid_private_key": SecretStr(b64url(raw))})
    point = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert keys.public_key(mine) == b64url(point)
    assert not (settings.data_dir / "vapid.key").exists()
