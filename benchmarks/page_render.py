"""Server time to render the web UI's pages on the embedded default (SQLite, in-process broker).

Builds the app in this process on a temporary data folder, makes two members and a direct
conversation of 50 messages, signs in through the login form (cookie session), then times
GET requests through the ASGI interface (no network: what the server spends per page):

  - the thread page with 50 messages (also lists conversations beside it and marks read)
  - the conversation list

    .venv/bin/python benchmarks/page_render.py [--requests 300]

Prints the median and 95th percentile of wall time, and the median CPU time (which stays honest
when other work shares the machine), in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path

from httpx import ASGITransport, AsyncClient

from pigeon.accounts import communities, directory
from pigeon.accounts import service as accounts
from pigeon.admin import service as admin
from pigeon.app import create_app
from pigeon.messaging import sending
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx
from pigeon.settings import Settings

PASSWORD = "bench password"


async def setup(app) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    rt, sends = app.state.runtime, app.state.sends
    async with rt.uow_scope() as uow:
        await communities.default_community(uow)
        a = await accounts.create_user(
            uow,
            email="a@example.com",
            username="reader",
            password=PASSWORD,
            passwords=rt.passwords,
            display_name="Rita Reader",
            tier="privileged",
        )
        b = await accounts.create_user(
            uow,
            email="b@example.com",
            username="seller",
            password=PASSWORD,
            passwords=rt.passwords,
            display_name="Sol Seller",
            tier="privileged",
        )
    async with rt.uow_scope() as uow:
        await admin.set_messaging(rt, uow, True, actor_id=None, actor_label="bench")
    people = await directory.principals(rt, [a.id, b.id])
    async with rt.uow_scope() as uow:
        conv_id, _ = await messaging.start_direct(Ctx(rt, sends, people[a.id], uow), b.id)
    for i in range(50):
        async with rt.uow_scope() as uow:
            ctx = Ctx(rt, sends, people[a.id if i % 2 else b.id], uow)
            await sending.send_message(
                ctx,
                conv_id,
                body=f"Message {i}: see https://example.com/{i} about the <new> arrivals & more",
            )
    return conv_id, a.id


async def timed(client: AsyncClient, url: str, n: int) -> tuple[list[float], list[float]]:
    """Wall time and CPU time (all of this process's threads) per request, in ms."""
    wall, cpu = [], []
    for _ in range(n):
        start, start_cpu = time.perf_counter(), time.process_time()
        r = await client.get(url)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert r.status_code == 200, r.status_code
    return wall, cpu


def report(name: str, samples: tuple[list[float], list[float]]) -> None:
    wall, cpu = samples
    p95 = statistics.quantiles(wall, n=20)[18]
    print(
        f"{name:<28} wall median {statistics.median(wall):6.2f} ms  p95 {p95:6.2f} ms"
        f"   CPU median {statistics.median(cpu):6.2f} ms   ({len(wall)} requests)"
    )


async def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            secret_key="bench-" + "k" * 40,
            rate_limits_enabled=False,
            password_hash_time_cost=1,
            password_hash_memory_kib=64,
            _env_file=None,
        )  # type: ignore[call-arg]
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            conv_id, _ = await setup(app)
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="http://bench") as client:
                page = await client.get("/login")
                token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
                assert token
                r = await client.post(
                    "/login",
                    data={"login": "reader", "password": PASSWORD, "csrf_token": token.group(1)},
                )
                assert r.status_code == 303
                thread = f"/messages/{conv_id}"
                body = (await client.get(thread)).text
                assert body.count('class="msg') == 50, "expected 50 messages on the page"
                await timed(client, thread, 20)  # warm up
                report("thread page, 50 messages", await timed(client, thread, requests))
                report("conversation list", await timed(client, "/messages", requests))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    asyncio.run(main(parser.parse_args().requests))
