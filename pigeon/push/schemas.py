"""What the push routes take and give. Keys are checked for what they must be (a P-256 point,
a 16-byte secret), so a bad subscription is refused here rather than failing every push."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pigeon.core.schemas import In
from pigeon.push.keys import b64url_decode

MAX_ENDPOINT = 2048


class KeysIn(In):
    p256dh: str = Field(min_length=80, max_length=100, description="the browser's P-256 key")
    auth: str = Field(min_length=20, max_length=32, description="its 16-byte auth secret")

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        from cryptography.hazmat.primitives.asymmetric import ec  # loaded at the first one

        try:
            raw = b64url_decode(value)
            if len(raw) != 65 or raw[0] != 4:
                raise ValueError
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("must be an uncompressed P-256 public key, base64url") from None
        return value.strip().rstrip("=")

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        try:
            if len(b64url_decode(value)) != 16:
                raise ValueError
        except ValueError:
            raise ValueError("must be 16 bytes, base64url") from None
        return value.strip().rstrip("=")


class SubscriptionIn(In):
    """`PushSubscription.toJSON()` as the browser gives it (`expirationTime` is ignored)."""

    endpoint: str = Field(min_length=10, max_length=MAX_ENDPOINT)
    keys: KeysIn
    expirationTime: int | None = Field(default=None, ge=0)  # noqa: N815 - the browser's name
    label: str | None = Field(
        default=None, max_length=100, description="a name for the device; default: the browser"
    )


class EndpointIn(In):
    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT)


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    endpoint: str
    user_agent: str = Field(description="the browser and system it was subscribed from")
    created_at: dt.datetime
    last_success_at: dt.datetime | None = Field(description="the last push it accepted")


class KeyOut(BaseModel):
    public_key: str = Field(description="the application server key for pushManager.subscribe")


class PushSettingIn(In):
    push: bool


class PushSettingOut(BaseModel):
    push: bool = Field(description="pushes to your devices about new messages")


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody
