"""Push tests send real pushes to a local push service (tests/support/push.py), never a mock."""

from __future__ import annotations

import pytest

from pigeon.settings import Settings
from tests.realtime.conftest import server  # noqa: F401
from tests.support.push import PushService, push_service  # noqa: F401


@pytest.fixture
def settings(settings: Settings, push_service: PushService) -> Settings:  # noqa: F811
    """Push on against the local service (http, on 127.0.0.1), looking often, no coalescing
    unless a test asks for it."""
    return settings.model_copy(
        update={
            "push_allow_insecure_endpoints": True,
            "push_interval_seconds": 0.2,
            "push_coalesce_seconds": 0.0,
            "smtp_from": "pigeon@example.org",
        }
    )
