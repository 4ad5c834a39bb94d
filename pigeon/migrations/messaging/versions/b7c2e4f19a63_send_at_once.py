"""send at once (PostgreSQL)

`pigeon_send_at_once`: a send's turns and its write in one statement of their own, so the
send needs no BEGIN and no COMMIT of its own (`messaging.send_tx.AtOnce`). Each of the
function's statements sees what committed before it ran (a volatile function takes a fresh
snapshot for each), so the write sees every send that held these turns before it, as the
two-statement send does.

Every turn is taken only if it is free: a send that would wait for one returns no row and is
sent the two-statement way, which waits for its turns before it holds a place in the message
stream. So does one whose members changed since the caller read them, one that took longer
than `p_budget` seconds to reach its write, and one whose `client_msg_id` is taken.

SQLite has no such function: its sends are written by one thread (`GroupCommit`).

Revision ID: b7c2e4f19a63
Revises: e3a1c9b27f40
Create Date: 2026-11-29 19:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b7c2e4f19a63"
down_revision: str | None = "e3a1c9b27f40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEND_AT_ONCE = """
CREATE FUNCTION pigeon_send_at_once(
    p_cid bigint, p_sid integer, p_body text, p_cmid varchar, p_rid bigint,
    p_now timestamptz, p_members integer[], p_pending integer[], p_skip integer[],
    p_uids integer[], p_space integer, p_alone bigint, p_budget double precision)
RETURNS TABLE (
    id bigint, conversation_id bigint, sender_id integer, body text,
    client_msg_id varchar, reply_to_id bigint, created_at timestamptz,
    edited_at timestamptz, deleted_at timestamptz, attachment_count integer,
    reaction_count integer, total_uids integer[], total_ns bigint[])
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    m message%ROWTYPE;
BEGIN
    -- the conversation's turn, then its other members' in id order, then the send's among
    -- all sends (shared): the order the two-statement send takes them in. `p_members` and
    -- `p_pending` (who has a request pending) are the members, in id order, as the caller
    -- read them and checked the send against them
    PERFORM 1 FROM conversation c WHERE c.id = p_cid AND c.deleted_at IS NULL
        FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF (SELECT array_agg(p.user_id ORDER BY p.user_id) FROM participant p
        WHERE p.conversation_id = p_cid) IS DISTINCT FROM p_members
       OR (SELECT coalesce(array_agg(p.user_id ORDER BY p.user_id), '{}') FROM participant p
        WHERE p.conversation_id = p_cid AND p.request_pending) IS DISTINCT FROM p_pending THEN
        RETURN;
    END IF;
    IF NOT (SELECT coalesce(bool_and(pg_try_advisory_xact_lock(p_space, o.u)), true)
            FROM (SELECT u FROM unnest(p_members) AS u WHERE u <> p_sid ORDER BY u) AS o) THEN
        RETURN;
    END IF;
    IF NOT pg_try_advisory_xact_lock_shared(p_alone) THEN
        RETURN;
    END IF;
    IF extract(epoch FROM clock_timestamp() - statement_timestamp()) > p_budget THEN
        RETURN;
    END IF;
    INSERT INTO message (conversation_id, sender_id, body, client_msg_id, reply_to_id,
        created_at, attachment_count)
    VALUES (p_cid, p_sid, p_body, p_cmid, p_rid, p_now, 0)
    ON CONFLICT (sender_id, client_msg_id) DO NOTHING
    RETURNING * INTO m;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE participant SET
        unread_count = CASE WHEN user_id = p_sid THEN 0 ELSE unread_count + 1 END,
        last_read_message_id = CASE WHEN user_id = p_sid THEN m.id
            ELSE last_read_message_id END,
        request_pending = request_pending AND user_id <> p_sid
    WHERE conversation_id = p_cid AND (user_id = p_sid OR user_id <> ALL(p_skip));
    UPDATE conversation SET last_message_id = m.id, updated_at = m.created_at
    WHERE conversation.id = p_cid;
    RETURN QUERY SELECT m.id, m.conversation_id, m.sender_id, m.body, m.client_msg_id,
        m.reply_to_id, m.created_at, m.edited_at, m.deleted_at, m.attachment_count,
        m.reaction_count, t.uids, t.ns
    FROM (SELECT coalesce(array_agg(r.u ORDER BY r.u), '{}') AS uids,
                 coalesce(array_agg(r.n ORDER BY r.u), '{}') AS ns
          FROM (SELECT u, (SELECT coalesce(sum(p.unread_count), 0) FROM participant p
                JOIN conversation v ON v.id = p.conversation_id
                WHERE p.user_id = u AND v.deleted_at IS NULL AND NOT p.muted
                AND NOT p.request_pending)::bigint AS n
                FROM unnest(p_uids) AS u) AS r) AS t;
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(SEND_AT_ONCE)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION pigeon_send_at_once(bigint, integer, text, varchar, bigint,"
            " timestamptz, integer[], integer[], integer[], integer[], integer, bigint,"
            " double precision)"
        )
