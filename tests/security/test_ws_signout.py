"""A live connection ends with the sign-in it came through (logout, a reused refresh token),
in every process that hears of it; other sign-ins of the same person stay connected."""

from __future__ import annotations

from pigeon.auth import service as auth
from tests.support.people import Person, access_token


async def test_signing_out_closes_that_sign_ins_connections(app, people, server) -> None:
    free = people.free
    phone = Person(free.id, free.username, free.tier, free.role, "", "f" * 32)
    phone.token = access_token(app.state.runtime, free.id, phone.family_id)
    laptop = await server.connect(free)
    other = await server.connect(phone)  # the same person, another sign-in
    async with app.state.runtime.uow_scope() as uow:
        await auth.revoke_family(uow, free.family_id)
    assert await laptop.closed() == (4401, "invalid_token")
    await other.send(type="ping")
    assert (await other.next("pong"))["type"] == "pong"
