"""Signing in through the pages with a plain HTTP client, the way a browser without script does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from tests.support.people import PASSWORD

_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_of(page: Response | str) -> str:
    text = page if isinstance(page, str) else page.text
    match = _CSRF.search(text)
    assert match, "the page carries no CSRF token"
    return match.group(1)


@asynccontextmanager
async def browser(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A browser moving through the site: like one, it says each request comes from this site
    (`Sec-Fetch-Site`); a test of a link from elsewhere overrides that."""
    transport = ASGITransport(app=app)
    headers = {"Sec-Fetch-Site": "same-origin"}
    async with AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
        yield c


async def sign_in(c: AsyncClient, username: str, password: str = PASSWORD) -> Response:
    page = await c.get("/login")
    r = await c.post(
        "/login",
        data={
            "login": username,
            "password": password,
            "csrf_token": csrf_of(page),
            "next": "/messages",
        },
    )
    assert r.status_code == 303, r.text
    return r


@asynccontextmanager
async def signed_in(app: FastAPI, username: str) -> AsyncIterator[AsyncClient]:
    async with browser(app) as c:
        await sign_in(c, username)
        yield c


async def post_form(c: AsyncClient, page_url: str, action: str, data: dict[str, str]) -> Response:
    """Open a page, take its CSRF token, and submit a form to `action`."""
    page = await c.get(page_url)
    return await c.post(action, data={**data, "csrf_token": csrf_of(page)})
