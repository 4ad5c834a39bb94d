from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from pigeon.accounts.schemas import UserOut
from pigeon.core.schemas import In, Line
from pigeon.core.types import NO_NUL

USERNAME = r"^[A-Za-z0-9_.-]{3,32}$"
TOKEN = r"^[A-Za-z0-9_-]+$"  # an opaque token as `security.new_opaque_token` makes them


class RegisterIn(In):
    email: EmailStr = Field(max_length=254)
    username: str = Field(
        pattern=USERNAME,
        description="3 to 32 letters, digits, '_', '.' or '-'",
    )
    password: str = Field(min_length=8, max_length=256)
    display_name: Line(64, "display_name") | None = None  # type: ignore[valid-type]
    invitation_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=TOKEN,
        description="the token of an invitation's link: required when registration is by "
        "invitation; the email must be the invited one, and the account joins its community "
        "and tier",
    )


class LoginIn(In):
    login: str = Field(
        min_length=1, max_length=254, pattern=NO_NUL, description="email or username"
    )
    password: str = Field(min_length=1, max_length=256)


class PasswordChangeIn(In):
    current_password: str = Field(min_length=1, max_length=256)
    # the rules (length included) are `accounts.passwords`', checked in the service
    new_password: str = Field(min_length=1, max_length=256)


class RefreshIn(In):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"


# --- the account's email (`account_email`) ---

# what the links carry: `security.new_opaque_token`, URL-safe base64
LINK_TOKEN = r"^[A-Za-z0-9_-]{1,200}$"


class LinkTokenIn(In):
    token: str = Field(pattern=LINK_TOKEN, max_length=200, description="the token from the link")


class ForgotIn(In):
    email: EmailStr = Field(max_length=254)


class ResetIn(In):
    token: str = Field(pattern=LINK_TOKEN, max_length=200, description="the token from the link")
    # the rules (length included) are `accounts.passwords`', checked in the service
    password: str = Field(min_length=1, max_length=256)


class EmailChangeIn(In):
    password: str = Field(min_length=1, max_length=256, description="your current password")
    email: EmailStr = Field(max_length=254, description="the new address")


class AcceptedOut(BaseModel):
    message: str


class EmailChangeOut(BaseModel):
    message: str
    pending_email: str = Field(description="the address the change waits on")


class VerificationSentOut(BaseModel):
    sent_to: str


class AccountEmailOut(BaseModel):
    email: str
    email_verified: bool
