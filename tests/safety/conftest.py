"""Helpers for the safety tests: moving time, and tokens that stay valid while it moves."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI

from pigeon.core.clock import clock
from tests.support.people import People, access_token


def travel(app: FastAPI, people: People, **delta: float) -> None:
    """Move the clock forward and give everyone a fresh access token for the new time."""
    clock.advance(dt.timedelta(**delta))
    settings = app.state.settings
    for person in people.values():
        person.token = access_token(settings, person.id, person.family_id)
