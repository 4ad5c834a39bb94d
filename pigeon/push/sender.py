"""One push to one device: encrypted (aes128gcm), signed (VAPID), posted to its push service.

pywebpush posts with `requests`, which blocks, so each push runs in a worker thread, at most
`push_concurrency` at a time, under a timeout; the event loop never waits on a push service.
The payload is whatever the caller gives: the fan-out sends no message content.

pywebpush and `requests` are imported at the first push, not at start: they hold 17 MiB that
a server whose members never turn on notifications does not need.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Literal

import orjson

from pigeon.core import metrics
from pigeon.push import keys
from pigeon.push.models import PushSubscription
from pigeon.settings import Settings

log = logging.getLogger("pigeon.push")

Outcome = Literal["sent", "gone", "failed"]


@dataclasses.dataclass(frozen=True, slots=True)
class Device:
    """What a push needs of a subscription, copied off its row (no session in the thread)."""

    id: int
    endpoint: str
    p256dh: str
    auth: str

    @classmethod
    def of(cls, row: PushSubscription) -> Device:
        return cls(row.id, row.endpoint, row.p256dh, row.auth)


class Pusher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lanes = asyncio.Semaphore(settings.push_concurrency)

    async def push(self, device: Device, payload: dict[str, object], *, topic: str) -> Outcome:
        """Send; "gone" when the push service says the subscription no longer exists."""
        import requests

        async with self.lanes:
            try:
                status = await asyncio.wait_for(
                    asyncio.to_thread(self._post, device, orjson.dumps(payload).decode(), topic),
                    self.settings.push_timeout_seconds + 1,
                )
            except (TimeoutError, requests.RequestException) as exc:
                return _failed("unreachable", device, exc)
            except Exception as exc:  # a key the push service or the library refuses
                return _failed("error", device, exc)
        if status in (404, 410):
            metrics.push_failures.labels(reason="gone").inc()
            return "gone"
        if status >= 300:
            return _failed(f"status_{status // 100}xx", device, f"HTTP {status}")
        metrics.pushes_sent.inc()
        return "sent"

    def _post(self, device: Device, data: str, topic: str) -> int:
        from pywebpush import WebPushException, webpush

        settings = self.settings
        try:
            response = webpush(
                {
                    "endpoint": device.endpoint,
                    "keys": {"p256dh": device.p256dh, "auth": device.auth},
                },
                data=data,
                vapid_private_key=keys.vapid(settings),
                vapid_claims={"sub": keys.subject(settings)},
                timeout=settings.push_timeout_seconds,
                ttl=settings.push_ttl_seconds,
                # a newer push about the same conversation replaces one still waiting
                headers={"Topic": topic, "Urgency": "high"},
            )
        except WebPushException as exc:
            if exc.status_code is None:
                raise
            return int(exc.status_code)
        return int(getattr(response, "status_code", 201))


def _failed(reason: str, device: Device, problem: object) -> Outcome:
    metrics.push_failures.labels(reason=reason).inc()
    log.warning("push to device %s failed (%s): %s", device.id, reason, problem)
    return "failed"
