"""Refreshes that race with the same token (two tabs, a retry after a timeout) do not sign the
person out everywhere: within a short grace window the token rotated last gets the same new
pair again. Reuse after the window, or of an older token, still revokes the sign-in (L9)."""

from __future__ import annotations

import asyncio
import datetime as dt

from httpx import AsyncClient, Response

from tests.support.people import PASSWORD

API = "/api/v1"


async def sign_up(client: AsyncClient) -> dict[str, str]:
    r = await client.post(
        f"{API}/auth/register",
        json={"email": "reader@example.com", "username": "reader", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def refresh(client: AsyncClient, token: str) -> Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": token})


async def signed_in(client: AsyncClient, access: str) -> bool:
    r = await client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {access}"})
    return r.status_code == 200


async def test_refreshes_racing_with_one_token_all_get_the_same_new_pair(client):
    tokens = await sign_up(client)
    answers = await asyncio.gather(*(refresh(client, tokens["refresh_token"]) for _ in range(4)))
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in answers}
    assert len(pairs) == 1  # one rotation, told four times
    ((access, new_refresh),) = pairs
    assert new_refresh != tokens["refresh_token"]
    # the sign-in lives on: the old access token, the new one, and the next rotation
    assert await signed_in(client, tokens["access_token"])
    assert await signed_in(client, access)
    r = await refresh(client, new_refresh)
    assert r.status_code == 200 and await signed_in(client, r.json()["access_token"])


async def test_a_retry_within_the_window_gets_the_same_pair(client, clock):
    tokens = await sign_up(client)
    first = await refresh(client, tokens["refresh_token"])
    clock.advance(dt.timedelta(seconds=20))  # the answer was lost; the client tries again
    again = await refresh(client, tokens["refresh_token"])
    assert again.status_code == 200
    assert again.json()["refresh_token"] == first.json()["refresh_token"]
    assert again.json()["access_token"] == first.json()["access_token"]


async def test_reuse_after_the_window_still_ends_the_sign_in(client, clock):
    tokens = await sign_up(client)
    rotated = (await refresh(client, tokens["refresh_token"])).json()
    clock.advance(dt.timedelta(seconds=31))
    r = await refresh(client, tokens["refresh_token"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_reused"
    r = await refresh(client, rotated["refresh_token"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_refresh_token"
    assert not await signed_in(client, rotated["access_token"])


async def test_an_older_token_is_reuse_even_within_the_window(client):
    """Rotated twice: the first token's successor is spent, so it is not a racing twin but a
    replay, however soon it comes back."""
    tokens = await sign_up(client)
    second = (await refresh(client, tokens["refresh_token"])).json()
    third = (await refresh(client, second["refresh_token"])).json()
    r = await refresh(client, tokens["refresh_token"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_reused"
    r = await refresh(client, third["refresh_token"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_refresh_token"
    assert not await signed_in(client, third["access_token"])


async def test_the_window_can_be_closed(app, client, clock):
    app.state.runtime.settings.refresh_reuse_grace_seconds = 0
    tokens = await sign_up(client)
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200
    clock.advance(dt.timedelta(seconds=1))
    r = await refresh(client, tokens["refresh_token"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_reused"
