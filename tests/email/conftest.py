"""Email tests run against a real SMTP server (aiosmtpd), never a mock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from pigeon.core.clock import Clock
from pigeon.core.db import Databases
from pigeon.core.events import InProcessBroker
from pigeon.core.runtime import Runtime
from pigeon.media.storage import open_store
from pigeon.settings import Settings
from tests.support.mail import with_email
from tests.support.smtp import SmtpServer, smtp  # noqa: F401

COMMUNITY = "Riverside Books"


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:  # noqa: F811
    """The suite's settings, with email on through the test's SMTP server; the background
    worker is off, so that each test delivers when it says so."""
    return with_email(settings, smtp, default_community_name=COMMUNITY, email_retry_max_attempts=3)


RuntimeFactory = Callable[..., AbstractAsyncContextManager[Runtime]]


@pytest.fixture
def other_runtime(settings: Settings, clock: Clock) -> RuntimeFactory:
    """Another process's runtime on the same databases, with some settings changed (e.g. an
    SMTP port nobody listens on)."""

    @asynccontextmanager
    async def make(**changes: Any) -> AsyncIterator[Runtime]:
        changed = settings.model_copy(update=changes)
        dbs = Databases(changed.app_db_url, changed.messaging_db_url)
        rt = Runtime(changed, dbs, InProcessBroker(), open_store(changed), clock)
        try:
            yield rt
        finally:
            await rt.close()
            await dbs.dispose()

    return make
