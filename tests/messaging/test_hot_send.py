"""The send served lean (`messaging.hot`, bearer token and JSON) answers exactly as the routed
send does (a cookie session with its CSRF header goes through the route): the same statuses,
the same envelopes, one idempotency between them, and it is logged and measured as the route.
"""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.messaging.test_policy import switch
from tests.support.people import dm
from tests.web.support import csrf_of, signed_in

API = "/api/v1"
SEND = API + "/conversations/{}/messages"


def answer(r: Any) -> tuple[int, Any]:
    """What a client relies on: the status, and the error's code and fields, or the message
    without what differs from one message to the next."""
    body = r.json()
    if "error" in body:
        return r.status_code, (body["error"]["code"], body["error"].get("fields"))
    return r.status_code, {k: v for k, v in body.items() if k not in ("id", "created_at")}


async def both(
    client: AsyncClient, page: AsyncClient, csrf: str, who: Any, path: str, content: bytes
) -> tuple[tuple[int, Any], tuple[int, Any]]:
    lean = await client.post(
        path, content=content, headers={**who.headers, "Content-Type": "application/json"}
    )
    routed = await page.post(
        path, content=content, headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    )
    return answer(lean), answer(routed)


async def test_the_lean_send_answers_as_the_route_does(app, client, people) -> None:
    conv = (await dm(client, people.priv, people.plus))["id"]
    others = (await dm(client, people.plus, people.free))["id"]
    async with signed_in(app, "priv") as page:
        csrf = csrf_of(await page.get("/messages"))
        cases: list[tuple[str, bytes]] = [
            (SEND.format(conv), b'{"body": "hello"}'),
            (SEND.format(conv), b'{"body": "with a reply", "reply_to_id": 1}'),
            (SEND.format(conv), b'{"body": ""}'),
            (SEND.format(conv), b'{"body": "   "}'),
            (SEND.format(conv), b'{"body": 5}'),
            (SEND.format(conv), b'{"body": "x", "attachment_ids": [999]}'),
            (SEND.format(conv), b'{"body": "x", "client_msg_id": "' + b"c" * 200 + b'"}'),
            (SEND.format(conv), b'{"body":'),
            (SEND.format(conv), b"[]"),
            (SEND.format(others), b'{"body": "not my conversation"}'),
            (SEND.format(987654321), b'{"body": "nowhere"}'),
            (SEND.format("9" * 20), b'{"body": "too big an id"}'),
        ]
        for path, content in cases:
            lean, routed = await both(client, page, csrf, people.priv, path, content)
            assert lean == routed, (path, content, lean, routed)
            assert lean[0] in (200, 201, 400, 404, 422), (path, content, lean)

        # one idempotency: a retry through either path returns the other's original
        first = await client.post(
            SEND.format(conv),
            json={"body": "once", "client_msg_id": "k1"},
            headers=people.priv.headers,
        )
        again = await page.post(
            SEND.format(conv),
            json={"body": "once", "client_msg_id": "k1"},
            headers={"X-CSRF-Token": csrf},
        )
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]

        # the switch holds on both
        await switch(client, people, False)
        lean, routed = await both(
            client, page, csrf, people.priv, SEND.format(conv), b'{"body": "off"}'
        )
        assert lean == routed and lean[0] == 403, (lean, routed)


async def test_a_bad_token_gets_the_same_envelope_as_on_any_route(client, people) -> None:
    conv = (await dm(client, people.priv, people.plus))["id"]
    for token in ("not-a-token", people.priv.token + "x"):
        headers = {"Authorization": f"Bearer {token}"}
        sent = await client.post(SEND.format(conv), json={"body": "hi"}, headers=headers)
        read = await client.get(SEND.format(conv), headers=headers)
        assert sent.status_code == read.status_code == 401
        assert sent.json() == read.json()
        assert sent.headers.get("www-authenticate") == read.headers.get("www-authenticate")


async def test_the_lean_send_is_logged_and_measured_as_its_route(client, people) -> None:
    conv = (await dm(client, people.priv, people.plus))["id"]
    r = await client.post(SEND.format(conv), json={"body": "counted"}, headers=people.priv.headers)
    assert r.status_code == 201 and r.headers["x-request-id"]
    metrics = (await client.get("/metrics")).text
    line = (
        'pigeon_http_request_duration_seconds_count{method="POST",'
        'route="/api/v1/conversations/{conversation_id}/messages",status="2xx"}'
    )
    assert line in metrics


async def test_the_lean_history_page_answers_as_the_route_does(app, client, people) -> None:
    conv = (await dm(client, people.priv, people.plus))["id"]
    others = (await dm(client, people.plus, people.free))["id"]
    ids = []
    for n in range(5):
        r = await client.post(
            SEND.format(conv), json={"body": f"message {n}"}, headers=people.priv.headers
        )
        ids.append(r.json()["id"])
    reply = await client.post(
        SEND.format(conv),
        json={"body": "a reply", "reply_to_id": ids[0]},
        headers=people.plus.headers,
    )
    assert reply.status_code == 201
    async with signed_in(app, "priv") as page:
        for path, query in [
            (SEND.format(conv), ""),
            (SEND.format(conv), "limit=2"),
            (SEND.format(conv), f"before_id={ids[3]}&limit=2"),
            (SEND.format(conv), f"after_id={ids[1]}"),
            (SEND.format(conv), f"after_id={ids[1]}&before_id={ids[4]}"),
            (SEND.format(conv), "limit=0"),
            (SEND.format(conv), "limit=201"),
            (SEND.format(conv), "limit=abc"),
            (SEND.format(conv), "limit=2&limit=3"),
            (SEND.format(conv), "before_id=99999999999999999999"),
            (SEND.format(conv), "elsewhere=1"),
            (SEND.format(others), ""),
            (SEND.format(987654321), ""),
        ]:
            url = f"{path}?{query}" if query else path
            lean = await client.get(url, headers=people.priv.headers)
            routed = await page.get(url)
            assert (lean.status_code, lean.json()) == (routed.status_code, routed.json()), url
        newest = (await client.get(SEND.format(conv), headers=people.priv.headers)).json()
        assert [m["body"] for m in newest][-2:] == ["message 4", "a reply"]
        assert newest[-1]["reply_to"]["id"] == ids[0]


def test_a_message_built_for_a_page_is_the_model_validated() -> None:
    """History builds its fifty messages without validation (`core.schemas.built`): they must
    carry every field of `MessageOut`, in its order, and serialize as the validated model."""
    import datetime as dt
    from types import SimpleNamespace

    from pigeon.messaging.schemas import MessageOut
    from pigeon.messaging.service import message_out

    row = SimpleNamespace(
        id=7,
        conversation_id=3,
        sender_id=2,
        body="hello",
        created_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        edited_at=None,
        deleted_at=None,
        reply_to_id=None,
        client_msg_id="c1",
    )
    message = message_out(row)
    assert list(vars(message)) == list(MessageOut.model_fields)
    checked = MessageOut.model_validate(message.model_dump())
    assert message.model_dump_json() == checked.model_dump_json()
