"""Helpers for the safety tests: moving time, and tokens that stay valid while it moves."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI

from tests.support.people import People, access_token


def travel(app: FastAPI, people: People, **delta: float) -> None:
    """Move the clock forward and give everyone a fresh access token for the new time."""
    rt = app.state.runtime
    rt.clock.advance(dt.timedelta(**delta))
    for person in people.values():
        person.token = access_token(rt, person.id, person.family_id)
