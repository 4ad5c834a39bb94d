"""One settings object for the server and the CLI, read from PIGEON_* variables and `.env`."""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MEDIA_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/heic",  # stored as JPEG
    "application/pdf",
    "text/plain",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/flac",
    "audio/mp4",
)

# the order of the P-256 curve's group (SEC 2): its private keys are the numbers below it
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PIGEON_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Path("data")
    database_url: str | None = None
    messaging_database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "pigeon"  # keys and channels; lets several deployments share a Redis

    secret_key: str | None = None
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=30, ge=1)
    session_days: int = Field(default=14, ge=1)
    # open: anyone may create an account; invite: only with an invitation's token (a fresh
    # install starts closed, so nobody signs up before the operator decides)
    registration: Literal["open", "invite"] = "invite"
    # how long an invitation's link works
    invitation_days: int = Field(default=7, ge=1, le=365)
    # argon2id, one lane: about 120 ms a hash on a current server core (OWASP's floor is
    # 19 MiB with time cost 2); at most `concurrency` hashes run at once, the rest queue
    # PostgreSQL connections a process keeps to each database, and how many more it may open
    # at a busy moment: processes x 2 x (pool + overflow) must stay under max_connections
    database_pool_size: int = Field(default=5, ge=1, le=1000)
    database_max_overflow: int = Field(default=10, ge=0, le=1000)
    password_hash_time_cost: int = Field(default=2, ge=1)
    password_hash_memory_kib: int = Field(default=19456, ge=8)
    password_hash_concurrency: int = Field(default=1, ge=1)
    # a refresh token used again this soon after its rotation returns the same new pair (two
    # tabs refreshing at once) instead of counting as reuse, which signs the family out
    refresh_reuse_grace_seconds: float = Field(default=30.0, ge=0)
    default_community_name: str = "The Store"
    default_community_slug: str = "store"

    max_body_chars: int = Field(default=4000, ge=1)
    max_title_chars: int = Field(default=120, ge=1)
    max_group_size: int = Field(default=256, ge=2)
    settings_cache_seconds: float = Field(default=1.0, ge=0)

    rate_limits_enabled: bool = True
    rate_send_per_minute: int = 60
    rate_send_burst: int = 20
    rate_login_per_minute: int = 10  # per account from one address
    rate_login_per_address_per_minute: int = 30
    rate_login_per_account_per_hour: int = 100  # per account from everywhere
    rate_register_per_hour: int = 20
    rate_invite_per_hour: int = 50  # invitations sent per inviter
    rate_upload_per_minute: int = 20
    rate_edit_per_minute: int = 30
    rate_react_per_minute: int = 120
    rate_organise_per_minute: int = 60  # mute, pin, archive, mark unread, remove for oneself
    # one's own notification settings and devices: the digest switch, push on/off, devices
    rate_settings_per_minute: int = 30
    rate_start_per_hour: int = 60
    rate_report_per_hour: int = 30
    rate_ticket_per_minute: int = 30
    # "forgot my password" asks: per client address, and per address asked about (known or not)
    rate_forgot_per_address_per_hour: int = 20
    rate_forgot_per_email_per_hour: int = 5
    # verification and change-of-email links one signed-in person may have sent
    rate_account_email_per_hour: int = 10

    retention_free_days: int = 30
    retention_privileged_days: int = 180
    retention_privileged_plus_days: int = 365
    retention_staff_days: int = 365
    retention_grace_days: int = 7
    retention_interval_seconds: int = 3600

    ws_queue_size: int = Field(default=256, ge=1)
    ws_heartbeat_seconds: float = 20.0
    typing_seconds: float = 5.0
    # client frames per connection: a burst, then a steady rate (a resume counts as ten)
    ws_frame_burst: int = Field(default=60, ge=1)
    ws_frames_per_second: float = Field(default=10.0, gt=0)
    ws_max_frame_bytes: int = Field(default=4096, ge=256)
    # a connection writes its read position for a conversation at most this often
    ws_read_interval_seconds: float = Field(default=0.25, ge=0)
    # messages one resume replays; past that the client pages the rest over HTTP
    ws_resume_max_messages: int = Field(default=1000, ge=1)
    # lifetime of a single-use WebSocket ticket (POST /api/v1/ws/ticket)
    ws_ticket_seconds: int = Field(default=30, ge=1)
    # origins besides the server's own whose pages may open the WebSocket with the session
    # cookie, comma-separated (e.g. https://chat.example.org behind a reverse proxy)
    allowed_origins: str = ""

    # attachments: the largest file a member may upload, by tier (staff: the privileged size),
    # and what one member may keep stored in all
    media_max_bytes_free: int = Field(default=10 * 1024 * 1024, ge=1)
    media_max_bytes_privileged: int = Field(default=50 * 1024 * 1024, ge=1)
    media_quota_bytes_free: int = Field(default=500 * 1024 * 1024, ge=0)
    media_quota_bytes_privileged: int = Field(default=5 * 1024 * 1024 * 1024, ge=0)
    # the types accepted, as decided from a file's bytes (comma-separated)
    media_allowed_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_MEDIA_TYPES)
    )
    # an image larger than this many pixels is refused before it is decoded
    media_max_pixels: int = Field(default=40_000_000, ge=1)
    media_thumbnail_px: int = Field(default=320, ge=16, le=2048)
    # uploads no message names are removed after this long
    media_unattached_hours: float = Field(default=24.0, gt=0)
    # an S3-compatible store instead of the local folder, when the bucket is set
    media_s3_bucket: str | None = None
    media_s3_endpoint: str | None = None  # e.g. http://127.0.0.1:8333; empty: AWS
    media_s3_region: str = "us-east-1"
    media_s3_access_key: str | None = None
    media_s3_secret_key: str | None = None
    media_s3_prefix: str = ""  # keys are written under this prefix

    # email: off (queued emails wait in the outbox) until the SMTP host is set
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None  # log in only when set
    smtp_password: SecretStr | None = None
    # starttls: upgrade a plain connection (port 587); tls: TLS from the start (465); none
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_from: str | None = None  # the sender's address; shown under the community's name
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # links in emails start with this (the address members reach the server at)
    public_url: str = "http://127.0.0.1:8000"
    # a failed delivery is retried after base * 2^(attempts-1) seconds, at most max, and given
    # up (dead, shown to admins) after this many attempts
    email_retry_max_attempts: int = Field(default=8, ge=1)
    email_retry_base_seconds: float = Field(default=60.0, gt=0)
    email_retry_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    # how often the background worker looks for due emails; 0 turns it off
    email_worker_interval_seconds: float = Field(default=15.0, ge=0)
    # email digests: a member away this long (no live connection, not seen since) is sent how
    # many messages wait for them, at most one digest per this period
    digest_delay_seconds: int = Field(default=900, ge=1)
    # how often the digest job looks for members to tell; 0 turns digests off
    digest_interval_seconds: float = Field(default=60.0, ge=0)
    # how long the links in account emails work: verifying an address, resetting a forgotten
    # password (short: it signs in as the person), confirming a new address
    verify_email_hours: float = Field(default=48.0, gt=0)
    reset_password_minutes: float = Field(default=60.0, gt=0)
    change_email_hours: float = Field(default=24.0, gt=0)

    # Web Push (VAPID): the private key as base64url (the raw 32 bytes, or DER); empty: one is
    # generated once and kept in the data folder (vapid.key). The subject tells push services
    # whom to contact (mailto: or https:); empty: mailto:smtp_from, else the https public URL
    vapid_private_key: SecretStr | None = None
    vapid_subject: str | None = None
    # how long a push service keeps a push for a device that is switched off
    push_ttl_seconds: int = Field(default=86400, ge=0, le=28 * 86400)
    # a device hears about one conversation at most once in this many seconds
    push_coalesce_seconds: float = Field(default=5.0, ge=0)
    # pushes in flight at once, and how long one may take
    push_concurrency: int = Field(default=8, ge=1, le=256)
    push_timeout_seconds: float = Field(default=10.0, gt=0)
    # messages older than this when the sender first sees them (after a stop) are not pushed
    push_max_age_seconds: float = Field(default=3600.0, gt=0)
    # how often the sender looks for new messages when no event woke it; 0 turns pushing off
    push_interval_seconds: float = Field(default=5.0, ge=0)
    # http:// push endpoints (tests against a local push service only; never in production)
    push_allow_insecure_endpoints: bool = False

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    # json: one JSON object a line, with request ids, and a line per request (route template,
    # status, duration, user id); text: uvicorn's lines, for a terminal
    log_format: Literal["text", "json"] = "text"
    # proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDRs,
    # comma-separated); empty: the peer's own address is the client's
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # /metrics answers loopback clients, and anyone presenting this as a bearer token
    metrics_token: str | None = None
    # the community's time zone, for pages of readers whose browser has not told theirs
    timezone: str = "UTC"
    # freeze what startup loaded and collect young objects less often (no full-collection
    # stalls under load); tests that start many apps in one process turn it off
    tune_gc: bool = True

    @property
    def app_db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'app.db'}"

    @property
    def messaging_db_url(self) -> str:
        return self.messaging_database_url or f"sqlite+aiosqlite:///{self.data_dir / 'messages.db'}"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("media_allowed_types", mode="before")
    @classmethod
    def _type_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    def media_max_bytes(self, tier: str, role: str) -> int:
        if role in ("manager", "owner", "admin") or tier != "free":
            return self.media_max_bytes_privileged
        return self.media_max_bytes_free

    def media_quota_bytes(self, tier: str, role: str) -> int:
        if role in ("manager", "owner", "admin") or tier != "free":
            return self.media_quota_bytes_privileged
        return self.media_quota_bytes_free

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"not an address or network: {entry!r}") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def signing_key(self) -> str:
        """The configured secret, or one generated once and kept in the data folder."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # created private, so that it is never readable by others, not even for a moment
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        self.secret_key = path.read_text().strip()
        return self.secret_key

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_subject(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if value and not value.startswith(("mailto:", "https://")):
            raise ValueError("must start with mailto: or https://")
        return value or None

    def vapid_key(self) -> str:
        """The VAPID private key (base64url): the configured one, or one generated once and
        kept in the data folder, so that subscriptions survive restarts (a new key would
        orphan every device)."""
        if self.vapid_private_key:
            return self.vapid_private_key.get_secret_value().strip()
        path = self.data_dir / "vapid.key"
        if not path.exists():
            # a P-256 private key is a uniformly random number from 1 to the order less one
            raw = secrets.randbelow(P256_ORDER - 1) + 1
            encoded = base64.urlsafe_b64encode(raw.to_bytes(32, "big")).rstrip(b"=").decode()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # written private under another name, then linked into place: never readable by
            # others, and a process starting at the same moment reads a whole key or its own
            draft = self.data_dir / f".vapid.key.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(encoded)
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text().strip()

    def retention_days(self, tier: str, role: str) -> int:
        if role in ("manager", "owner", "admin"):
            return self.retention_staff_days
        return {
            "free": self.retention_free_days,
            "privileged": self.retention_privileged_days,
            "privileged_plus": self.retention_privileged_plus_days,
        }[tier]


@lru_cache
def get_settings() -> Settings:
    return Settings()
