"""Events and the broker that carries them to every process.

Two kinds of traffic cross the broker:

- **Events** for people's live connections (`message.new`, `receipt.read`, ...). Each is a typed
  frame (`Event` subclasses, one per frame type) addressed to user ids. A service queues it on
  the unit of work; it is published once, after the commit, as one envelope whatever the number
  of recipients: a small JSON header (`users`, per-user `unread` totals, `sent_at`) and the
  frame exactly as the client receives it. A process reads the header and hands the frame bytes
  to the connections it holds; it never decodes the frame itself.
- **Control messages** between processes (`Control` subclasses): a setting changed, a
  person's facts changed (suspension included), blocks changed, sign-ins ended. Every process
  forgets what it cached about them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from pigeon.core import metrics
from pigeon.core.errors import log_failure
from pigeon.core.stream import Stream, Ticket

log = logging.getLogger("pigeon.events")

EVENTS_CHANNEL = "pigeon:events"
CONTROL_CHANNEL = "pigeon:control"

Listener = Callable[[str, bytes], Awaitable[None]]


class Event(BaseModel):
    """A frame sent to live connections: `{type, data, id?}`; subclasses fix `type` and `data`."""

    model_config = ConfigDict(frozen=True)

    type: str
    data: Any
    id: int | None = None

    def encode(self) -> bytes:
        return self.__pydantic_serializer__.to_json(
            self, exclude=None if self.id is not None else _NO_ID
        )


_NO_ID = {"id"}


class Envelope:
    """What crosses the broker for one event: who gets it, and the frame as they get it."""

    __slots__ = ("conversation_id", "frame", "sent_at", "unread", "upto", "users")

    def __init__(
        self,
        frame: bytes,
        users: list[int],
        *,
        sent_at: float,
        unread: dict[int, int] | None = None,
        conversation_id: int | None = None,
        upto: int | None = None,
    ) -> None:
        self.frame = frame
        self.users = users
        self.sent_at = sent_at
        self.unread = unread
        self.conversation_id = conversation_id
        self.upto = upto  # the message stream's position when it was published (`core.stream`)

    def encode(self) -> bytes:
        """The wire form, without the position: the stream puts it in front (`positioned`)."""
        header: dict[str, Any] = {"users": self.users, "sent_at": self.sent_at}
        if self.unread is not None:
            header["unread"] = {str(k): v for k, v in self.unread.items()}
            header["conversation_id"] = self.conversation_id
        return orjson.dumps(header) + b"\n" + self.frame

    @classmethod
    def decode(cls, payload: bytes) -> Envelope:
        upto = None
        if payload[:1] == b"@":  # `@<position>` first, when the stream's position came with it
            line, _, payload = payload.partition(b"\n")
            upto = int(line[1:])
        head, _, frame = payload.partition(b"\n")
        header = orjson.loads(head)
        unread = header.get("unread")
        return cls(
            frame,
            header["users"],
            sent_at=header["sent_at"],
            unread={int(k): v for k, v in unread.items()} if unread is not None else None,
            conversation_id=header.get("conversation_id"),
            upto=upto,
        )


def positioned(upto: int, payload: bytes) -> bytes:
    """An encoded envelope with the stream's position in front (what `Envelope.decode` reads;
    `core.stream`'s Redis script writes the same)."""
    return b"@%d\n" % upto + payload


def position_only(sent_at: float) -> bytes:
    """An envelope for nobody: it carries only the position put in front of it."""
    return Envelope(b"", [], sent_at=sent_at).encode()


# --- control messages between processes ---


class Control(BaseModel):
    model_config = ConfigDict(frozen=True)


class SettingChanged(Control):
    kind: Literal["settings.changed"] = "settings.changed"
    key: str
    value: Any


class PeopleChanged(Control):
    """Tier, role, profile, communities or suspension of these people changed."""

    kind: Literal["people.changed"] = "people.changed"
    user_ids: list[int]


class BlocksChanged(Control):
    kind: Literal["blocks.changed"] = "blocks.changed"
    user_ids: list[int]


class SignInsRevoked(Control):
    """These sign-ins (token families) ended: their tokens stop working everywhere."""

    kind: Literal["signins.revoked"] = "signins.revoked"
    family_ids: list[str]


ControlMessage = Annotated[
    SettingChanged | PeopleChanged | BlocksChanged | SignInsRevoked, Field(discriminator="kind")
]
_control = TypeAdapter(ControlMessage)


def encode_control(message: Control) -> bytes:
    return message.__pydantic_serializer__.to_json(message)


def decode_control(payload: bytes) -> ControlMessage | None:
    try:
        return _control.validate_json(payload)
    except ValueError:
        log.warning("ignoring an unknown control message")
        return None


# --- brokers ---


class Broker(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, channel: str, payload: bytes) -> None: ...
    def add_listener(self, listener: Listener) -> None: ...
    async def ping(self) -> bool: ...


class InProcessBroker:
    """Delivers to this process's listeners only: the default, and enough for one process."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def publish(self, channel: str, payload: bytes) -> None:
        for listener in list(self._listeners):
            try:
                await listener(channel, payload)
            except Exception:  # a failing listener must not break the sender
                log_failure(log, "event listener failed")

    async def ping(self) -> bool:
        return True


class Publisher:
    """Publishes what a unit of work queued, after its commit, with the message stream's
    position (`core.stream`) when the commit moved it. A failure is logged, never raised: the
    change is committed, and clients catch up from the database on resume."""

    def __init__(self, broker: Broker, now: Callable[[], float], stream: Stream) -> None:
        self.broker = broker
        self.now = now
        self.stream = stream

    async def events(
        self,
        queued: Iterable[tuple[Event, list[int], dict[int, int] | None]],
        *,
        tickets: list[Ticket] | None = None,
    ) -> int | None:
        """Publish each event. With `tickets` (places in the message stream its unit of work
        held), they are released as the events go out, and every process learns the new
        position from them (from an envelope for nobody when there is no event): with Redis in
        one step, so that no envelope carries a position before the events it covers are out.
        Returns the position, if it is known."""
        now = self.now()
        payloads = [
            Envelope(
                event.encode(),
                users,
                sent_at=now,
                unread=unread,
                conversation_id=_conversation_of(event) if unread is not None else None,
            ).encode()
            for event, users, unread in queued
            if users
        ]
        upto = None
        if tickets:
            try:
                upto, published = await self.stream.release(
                    tickets, payloads or [position_only(now)]
                )
            except Exception:
                log_failure(log, "releasing places in the message stream failed")
                upto, published = None, False
            if published:
                return upto
            if upto is not None:
                payloads = [positioned(upto, p) for p in payloads or [position_only(now)]]
        for payload in payloads:
            try:
                await self.broker.publish(EVENTS_CHANNEL, payload)
            except Exception:
                metrics.publish_failures.inc()
                log_failure(log, "publishing an event failed (clients will catch up on resume)")
        return upto

    async def controls(self, queued: Iterable[Control]) -> None:
        for message in queued:
            try:
                await self.broker.publish(CONTROL_CHANNEL, encode_control(message))
            except Exception:
                log_failure(log, "publishing a control message failed")


def _conversation_of(event: Event) -> int | None:
    data = event.data
    return getattr(data, "conversation_id", None)
