"""Frames written by hand for speed are exactly the frames their models write."""

from __future__ import annotations

import pytest

from pigeon.messaging.events import Unread, UnreadData
from pigeon.realtime.frames import server_frame


@pytest.mark.parametrize("total,conversation_id", [(0, 1), (3, 42), (10**9, 2**62)])
def test_the_unread_frame_is_the_models(total: int, conversation_id: int) -> None:
    model = Unread(data=UnreadData(total=total, conversation_id=conversation_id))
    assert Unread.text(total, conversation_id) == model.encode().decode()
    assert server_frame.validate_json(Unread.text(total, conversation_id)) == model
