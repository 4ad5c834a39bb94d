"""A token signed with the server's key but carrying a claim of the wrong shape is an invalid
token (401 `invalid_token`), never a 500: for the API, the pages and the WebSocket alike."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import jwt
import orjson
import pytest

from pigeon.core.security import new_family_id
from tests.realtime import conftest as realtime

API = "/api/v1"
server = realtime.server  # the fixture: the test's app on a real socket, for WebSockets


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    good: dict[str, Any] = {
        "sub": "1",
        "typ": "access",
        "fid": new_family_id(),
        "iat": now,
        "exp": now + 600,
    }
    good.update(changes)
    return {k: v for k, v in good.items() if v is not DROP}


DROP = object()

MALFORMED = {
    "exp a string": claims(exp="soon"),
    "exp a boolean": claims(exp=True),
    "exp a list": claims(exp=[1]),
    "exp an object": claims(exp={"at": 1}),
    "exp infinite": claims(exp=float("inf")),
    "exp null": claims(exp=None),
    "exp missing": claims(exp=DROP),
    "iat a string": claims(iat="yesterday"),
    "sub a number": claims(sub=1),
    "sub not digits": claims(sub="one"),
    "sub other digits": claims(sub="\u0661"),  # ARABIC-INDIC DIGIT ONE: int() takes it
    "sub negative": claims(sub="-1"),
    "sub zero": claims(sub="0"),
    "sub beyond 32 bits": claims(sub="99999999999"),
    "sub missing": claims(sub=DROP),
    "typ a list": claims(typ=["access"]),
    "typ missing": claims(typ=DROP),
    "fid a number": claims(fid=7),
    "fid empty": claims(fid=""),
    "fid not hex": claims(fid="z" * 32),
    "fid missing": claims(fid=DROP),
}


def forge(key: str, body: dict[str, Any]) -> str:
    return jwt.encode(body, key, algorithm="HS256")


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_claim_is_an_invalid_token(app, client, people, case):
    key, body = app.state.settings.signing_key(), MALFORMED[case]
    r = await client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {forge(key, body)}"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_token"
    # the same claims in a page's session cookie: signed out, not an error page
    session = body if case.startswith("typ") else {**body, "typ": "session"}
    r = await client.get("/messages", headers={"Cookie": f"pigeon_session={forge(key, session)}"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_a_malformed_token_cannot_open_a_live_connection(app, people, server):
    token = forge(app.state.settings.signing_key(), claims(sub=str(people.free.id), exp="soon"))
    live = await server.connect(token=token, hello=False)
    assert await live.closed() == (4401, "invalid_token")


async def test_a_well_formed_token_still_works(app, client, people):
    token = forge(app.state.settings.signing_key(), claims(sub=str(people.free.id)))
    r = await client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["username"] == "free"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["none", "HS384", "RS256", "ES256"])
async def test_a_token_naming_another_algorithm_is_refused(app, client, people, alg):
    """Good claims under a header naming another algorithm, signed with the server's key as
    that header's HMAC would be, or not at all ("none"): refused, whether or not PyJWT has the
    algorithm."""
    key = app.state.settings.signing_key().encode()
    header = b64url(orjson.dumps({"alg": alg, "typ": "JWT"}))
    body = b64url(orjson.dumps(claims(sub=str(people.free.id))))
    signed = f"{header}.{body}".encode()
    mac = b"" if alg == "none" else hmac.new(key, signed, hashlib.sha256).digest()
    token = f"{header}.{body}.{b64url(mac)}"
    r = await client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_token"
