"""Redis clients whose pool waits for a free connection instead of failing.

redis-py's default pool raises `MaxConnectionsError` once all of its connections are busy: a
thousand people leaving at once (each marking presence), or a burst of rate-limit checks,
would fail requests and lose presence updates. These pools hold at most `MAX_CONNECTIONS` and
make the next caller wait up to `WAIT_SECONDS` for one, which under such a burst is
milliseconds.
"""

from __future__ import annotations

from typing import Any

MAX_CONNECTIONS = 64
WAIT_SECONDS = 10


def client(url: str, **options: Any) -> Any:
    """A `redis.asyncio.Redis` on a blocking pool; `options` are the connections' own
    (`client_name`, `health_check_interval`, ...)."""
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_SECONDS, **options
    )
    return aioredis.Redis.from_pool(pool)  # which closes the pool with the client
