"""Rate limits: GCRA (a token bucket kept as one timestamp per key), in-process or in Redis.

Each rule allows `burst` requests at once and then `rate` per `period`. A key's whole state is
its "theoretical arrival time": a check reads it, moves it one emission interval forward and
refuses when that would run more than `burst` intervals ahead of now. In-process that is one
dict lookup; with `PIGEON_REDIS_URL` it is one Lua call, so the limit holds across processes.
Time comes from the injectable clock, so tests move it instead of sleeping.
`PIGEON_RATE_LIMITS_ENABLED=false` turns every limit off (load tests).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Protocol

from pigeon.core.clock import Clock
from pigeon.core.errors import RateLimited
from pigeon.settings import Settings

log = logging.getLogger("pigeon.ratelimit")


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    name: str
    rate: int  # requests per period, steady state
    period: float  # seconds
    burst: int  # requests allowed at once

    @property
    def interval(self) -> float:
        return self.period / self.rate


def rules(settings: Settings) -> dict[str, Rule]:
    s = settings
    return {
        "send": Rule("send", s.rate_send_per_minute, 60, s.rate_send_burst),
        "login": Rule("login", s.rate_login_per_minute, 60, s.rate_login_per_minute),
        "login_address": Rule(
            "login_address",
            s.rate_login_per_address_per_minute,
            60,
            s.rate_login_per_address_per_minute,
        ),
        "login_account": Rule(
            "login_account",
            s.rate_login_per_account_per_hour,
            3600,
            s.rate_login_per_account_per_hour,
        ),
        "register": Rule("register", s.rate_register_per_hour, 3600, s.rate_register_per_hour),
        "upload": Rule("upload", s.rate_upload_per_minute, 60, s.rate_upload_per_minute),
        "edit": Rule("edit", s.rate_edit_per_minute, 60, s.rate_edit_per_minute // 2 or 1),
        "react": Rule("react", s.rate_react_per_minute, 60, s.rate_react_per_minute // 4 or 1),
        "organise": Rule(
            "organise", s.rate_organise_per_minute, 60, s.rate_organise_per_minute // 4 or 1
        ),
        "settings": Rule(
            "settings", s.rate_settings_per_minute, 60, s.rate_settings_per_minute // 3 or 1
        ),
        "start": Rule("start", s.rate_start_per_hour, 3600, max(1, s.rate_start_per_hour // 6)),
        "report": Rule("report", s.rate_report_per_hour, 3600, max(1, s.rate_report_per_hour // 3)),
        "ticket": Rule(
            "ticket", s.rate_ticket_per_minute, 60, max(1, s.rate_ticket_per_minute // 3)
        ),
        "invite": Rule("invite", s.rate_invite_per_hour, 3600, max(1, s.rate_invite_per_hour // 5)),
        "forgot_address": Rule(
            "forgot_address",
            s.rate_forgot_per_address_per_hour,
            3600,
            s.rate_forgot_per_address_per_hour,
        ),
        "forgot_email": Rule(
            "forgot_email", s.rate_forgot_per_email_per_hour, 3600, s.rate_forgot_per_email_per_hour
        ),
        "account_email": Rule(
            "account_email",
            s.rate_account_email_per_hour,
            3600,
            max(1, s.rate_account_email_per_hour // 2),
        ),
    }


MESSAGES = {
    "send": "You are sending messages too fast",
    "login": "Too many sign-in attempts for this account from your address",
    "login_address": "Too many sign-in attempts from your address",
    "login_account": "Too many sign-in attempts for this account",
    "register": "Too many new accounts from your address",
    "upload": "You are uploading too fast",
    "edit": "You are editing messages too fast",
    "react": "You are reacting too fast",
    "organise": "You are changing your conversations too fast",
    "settings": "You are changing your settings too fast",
    "start": "You are starting conversations too fast",
    "report": "You are sending reports too fast",
    "ticket": "You are asking for live-connection tickets too fast",
    "invite": "You are sending invitations too fast",
    "forgot_address": "Too many password reset requests from your address",
    "forgot_email": "Too many password reset requests for this email address",
    "account_email": "You are asking for account emails too fast",
}


class Store(Protocol):
    async def take(self, key: str, rule: Rule, now: float) -> float:
        """Count one request; returns 0 when allowed, else the seconds until it would be."""
        ...

    async def close(self) -> None: ...


class MemoryStore:
    """One process's buckets: a dict of key -> theoretical arrival time."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}

    async def take(self, key: str, rule: Rule, now: float) -> float:
        return self.take_now(key, rule, now)

    def take_now(self, key: str, rule: Rule, now: float) -> float:
        tat = self._tat.get(key, now)
        if tat < now:
            tat = now
        new_tat = tat + rule.interval
        wait = new_tat - rule.burst * rule.interval - now
        if wait > 0:
            return wait
        if len(self._tat) >= self.MAX_KEYS:
            self._prune(now)
        self._tat[key] = new_tat
        return 0.0

    def _prune(self, now: float) -> None:
        self._tat = {k: v for k, v in self._tat.items() if v > now}

    async def close(self) -> None:
        self._tat.clear()


_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - burst * interval - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return 0
"""


class RedisStore:
    """Buckets shared by every process using the same Redis and prefix (times in ms)."""

    def __init__(self, url: str, prefix: str) -> None:
        from pigeon.core import redis_pool

        self._redis = redis_pool.client(url)
        self._script = self._redis.register_script(_GCRA)
        self._prefix = f"{prefix}:rl:"

    async def take(self, key: str, rule: Rule, now: float) -> float:
        wait_ms = await self._script(
            keys=[self._prefix + key],
            args=[int(now * 1000), max(1, int(rule.interval * 1000)), rule.burst],
        )
        return int(wait_ms) / 1000

    async def close(self) -> None:
        await self._redis.aclose()


class Limiter:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.clock = clock
        self.enabled = settings.rate_limits_enabled
        self.rules = rules(settings)
        self.store: Store = (
            RedisStore(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else MemoryStore()
        )

    async def hit(self, rule_name: str, key: Any) -> None:
        """Count one request against `rule_name` for `key`; raise RateLimited when over."""
        if not self.enabled:
            return
        rule = self.rules[rule_name]
        if rule.rate <= 0:
            return
        try:
            wait = await self.store.take(f"{rule_name}:{key}", rule, self.clock.now().timestamp())
        except Exception:  # a limiter outage must not take the service down with it
            log.warning("rate limiter unavailable; allowing %s", rule_name, exc_info=True)
            return
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(seconds, f"{MESSAGES[rule_name]}; try again in {seconds} s.")

    async def check_send(self, user_id: int) -> None:
        await self.hit("send", user_id)

    async def check_login(self, *, account: str, address: str | None) -> None:
        """Sign-in attempts: per address, per account from that address, and per account from
        everywhere. Someone guessing from one address uses up only their own budget for the
        account, so its owner still signs in from theirs; guesses spread over many addresses
        meet the slower account-wide backstop."""
        address = address or "unknown"
        account = account.strip().lower()
        await self.hit("login_address", address)
        await self.hit("login", f"{account}|{address}")
        await self.hit("login_account", account)

    async def check_register(self, *, address: str | None) -> None:
        await self.hit("register", address or "unknown")

    async def check_invite(self, inviter: int | None) -> None:
        """Invitations per inviter: each one is an email to a stranger's address."""
        await self.hit("invite", inviter if inviter is not None else "system")

    async def check_forgot(self, *, email: str, address: str | None) -> None:
        """Password reset requests: per client address, and per address asked about, known or
        not (the same budget either way, so a refusal says nothing about an account). The
        second keeps anyone from filling a member's inbox with reset links."""
        await self.hit("forgot_address", address or "unknown")
        await self.hit("forgot_email", email.strip().lower())

    async def check_settings(self, user_id: int) -> None:
        """One's own notification settings and push devices: cheap, but each is a write."""
        await self.hit("settings", user_id)

    async def check_account_email(self, user_id: int) -> None:
        await self.hit("account_email", user_id)
