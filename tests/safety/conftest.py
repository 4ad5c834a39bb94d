"""Helpers for the safety tests: moving time, and tokens that stay valid while it moves."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI

from pigeon.core.clock import clock
from pigeon.core.security import create_access_token
from tests.support.people import People


def travel(app: FastAPI, people: People, **delta: float) -> None:
    """Move the clock forward and give everyone a fresh access token for the new time."""
    clock.advance(dt.timedelta(**delta))
    settings = app.state.settings
    for person in people.values():
        person.token = create_access_token(
            settings.signing_key(), user_id=person.id, minutes=settings.access_token_minutes
        )
