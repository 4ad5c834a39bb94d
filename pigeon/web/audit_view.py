"""The admin page's audit log: each entry as a sentence, with the names of the people and
communities it mentions looked up once for the whole page (never a query per line)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import communities
from pigeon.accounts import service as accounts
from pigeon.admin.audit_text import Names, describe
from pigeon.core.audit import AuditLog
from pigeon.core.principal import Principal
from pigeon.web.render import reader_zone


def _mentioned(entries: Sequence[AuditLog]) -> set[int]:
    ids: set[int] = set()
    for e in entries:
        data = e.data if isinstance(e.data, dict) else {}
        ids.update(i for i in (e.actor_id, data.get("author_id"), data.get("user_id")) if i)
        if e.target_type == "user" and e.target_id:
            ids.add(e.target_id)
        listed = data.get("user_ids")
        if isinstance(listed, list):
            ids.update(listed[:5])
    return {i for i in ids if isinstance(i, int)}


async def sentences(
    request: Request, session: AsyncSession, viewer: Principal, entries: Sequence[AuditLog]
) -> list[dict[str, Any]]:
    users = await accounts.users_by_ids(session, _mentioned(entries))
    names = Names(
        users={uid: u.display_name for uid, u in users.items()},
        communities={c.id: c.name for c in await communities.list_communities(session, viewer)},
    )
    zone = reader_zone(request)
    return [{"entry": e, "text": describe(e, names, zone)} for e in entries]
