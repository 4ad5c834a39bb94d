"""Who is online: a user is online from their first live connection until their last closes.

Each process counts its own connections per user. With one process that is the whole story
(`LocalPresence`). With Redis (`RedisPresence`), each user has a set of the processes that hold
a connection of theirs, and each process keeps a liveness key alive with its heartbeat; a
process that dies stops counting once its key expires, so a user is never stuck online.

A user's set lives four times as long as a liveness key, and each heartbeat renews the sets of
a quarter of the users connected here (by id), 250 to a pipeline: at 16,000 connections
renewing every set at every beat took 0.6 s, all of it with the event loop held. A process
whose liveness key had lapsed (others may have swept its users away) renews them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Protocol


class Presence(Protocol):
    async def came_online(self, user_id: int) -> bool: ...
    async def went_offline(self, user_id: int) -> bool: ...
    async def heartbeat(self, user_ids: Iterable[int]) -> None: ...
    async def is_online(self, user_id: int) -> bool: ...
    async def sweep(self) -> list[int]: ...
    async def close(self) -> None: ...


class LocalPresence:
    """One process: the hub's own counts are the truth; every local transition is global."""

    def __init__(self) -> None:
        self.online: set[int] = set()

    async def came_online(self, user_id: int) -> bool:
        self.online.add(user_id)
        return True

    async def went_offline(self, user_id: int) -> bool:
        self.online.discard(user_id)
        return True

    async def heartbeat(self, user_ids: Iterable[int]) -> None:
        return None

    async def is_online(self, user_id: int) -> bool:
        return user_id in self.online

    async def sweep(self) -> list[int]:
        return []

    async def close(self) -> None:
        return None


class RedisPresence:
    """Across processes: `{prefix}:presence:{user}` holds the process ids serving that user."""

    SHARES = 4  # a user's set is renewed every fourth beat (it lives for twelve or more)
    CHUNK = 250  # users renewed in one pipeline: a few milliseconds of the event loop

    def __init__(self, redis: Any, prefix: str, *, ttl_seconds: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.process = uuid.uuid4().hex[:12]
        self.ttl_ms = max(1000, int(ttl_seconds * 1000))
        self._beats = 0

    def _user(self, user_id: int) -> str:
        return f"{self.prefix}:presence:{user_id}"

    def _alive(self, process: str) -> str:
        return f"{self.prefix}:process:{process}"

    def _served(self, process: str) -> str:
        return f"{self.prefix}:served:{process}"

    @property
    def _processes(self) -> str:
        return f"{self.prefix}:processes"

    async def _holders(self, user_id: int) -> set[str]:
        return _names(await self.redis.smembers(self._user(user_id)))

    async def _alive_among(self, processes: set[str]) -> set[str]:
        """Those of `processes` whose liveness key is there, and this process: a user held by
        one of these is online."""
        others = sorted(processes - {self.process})
        flags = await self.redis.mget([self._alive(p) for p in others]) if others else []
        return {self.process, *(p for p, f in zip(others, flags, strict=True) if f is not None)}

    async def _live_others(self, user_id: int) -> list[str]:
        """The other live processes holding the user; dead ones are taken out of the set."""
        others = await self._holders(user_id) - {self.process}
        if not others:
            return []
        alive = await self._alive_among(others)
        dead = others - alive
        if dead:
            await self.redis.srem(self._user(user_id), *dead)
        return sorted(others & alive)

    async def came_online(self, user_id: int) -> bool:
        await self.redis.set(self._alive(self.process), b"1", px=self.ttl_ms)
        others = await self._live_others(user_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self._user(user_id), self.process)
        pipe.pexpire(self._user(user_id), self.ttl_ms * 4)
        pipe.sadd(self._processes, self.process)
        pipe.sadd(self._served(self.process), user_id)
        await pipe.execute()
        return not others

    async def went_offline(self, user_id: int) -> bool:
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(self._user(user_id), self.process)
        pipe.srem(self._served(self.process), user_id)
        await pipe.execute()
        return not await self._live_others(user_id)

    async def heartbeat(self, user_ids: Iterable[int]) -> None:
        """Keep this process alive (the hub beats six times in a liveness key's life), and
        renew this beat's share of the users' sets (each also renewed when they connect); all
        of them if the key had lapsed, as another process may then have swept them away."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self._alive(self.process), b"1", px=self.ttl_ms, get=True)
        pipe.sadd(self._processes, self.process)
        lapsed = (await pipe.execute())[0] is None
        share, self._beats = self._beats % self.SHARES, self._beats + 1
        ids = [uid for uid in user_ids if lapsed or uid % self.SHARES == share]
        for start in range(0, len(ids), self.CHUNK):
            chunk = ids[start : start + self.CHUNK]
            pipe = self.redis.pipeline(transaction=False)
            for uid in chunk:
                pipe.sadd(self._user(uid), self.process)
                pipe.pexpire(self._user(uid), self.ttl_ms * 4)
            pipe.sadd(self._served(self.process), *chunk)
            await pipe.execute()

    async def sweep(self) -> list[int]:
        """Users left offline by processes that died: claim each dead process once (SREM is
        atomic, so one survivor does it), drop it from its users, and return those it left
        with no live process at all, so that their offline can be announced."""
        processes = [
            p.decode() if isinstance(p, bytes) else p
            for p in await self.redis.smembers(self._processes)
        ]
        others = [p for p in processes if p != self.process]
        if not others:
            return []
        alive = await self.redis.mget([self._alive(p) for p in others])
        offline: list[int] = []
        for process, flag in zip(others, alive, strict=True):
            if flag is not None or not await self.redis.srem(self._processes, process):
                continue
            users = [int(u) for u in await self.redis.smembers(self._served(process))]
            await self.redis.delete(self._served(process))
            for start in range(0, len(users), self.CHUNK):
                offline += await self._left(process, users[start : start + self.CHUNK])
        return offline

    async def _left(self, dead: str, users: list[int]) -> list[int]:
        """Take a dead process out of these users' sets; those no live process holds now.
        One pipeline and one read of liveness a chunk, not three round trips a user: a dead
        process of 16,000 users held its survivors' check for 50,000 of them."""
        pipe = self.redis.pipeline(transaction=False)
        for uid in users:
            pipe.srem(self._user(uid), dead)
        for uid in users:
            pipe.smembers(self._user(uid))
        replies = await pipe.execute()
        holders = [_names(members) for members in replies[len(users) :]]
        alive = await self._alive_among(set().union(*holders))
        return [uid for uid, held in zip(users, holders, strict=True) if not held & alive]

    async def is_online(self, user_id: int) -> bool:
        """One read of the user's set (and of liveness, unless this process holds them)."""
        holders = await self._holders(user_id)
        return self.process in holders or bool(holders & await self._alive_among(holders))

    async def close(self) -> None:
        await self.redis.delete(self._alive(self.process))


def _names(members: Iterable[Any]) -> set[str]:
    return {m.decode() if isinstance(m, bytes) else m for m in members}
