"""What a live connection remembers of the messages it was given (to skip what a replay
would send again) behaves as a set of the highest ids added (ids come mostly in increasing
order: the latest), in little memory."""

from __future__ import annotations

import random

from pigeon.realtime.connection import RecentIds


def test_it_answers_as_a_bounded_set_of_the_highest_ids_added() -> None:
    rng = random.Random(7)
    recent = RecentIds(64)
    model: set[int] = set()
    for _ in range(5_000):
        value = rng.randint(1, 200)
        if rng.random() < 0.1:  # a replay begins: a parked message is forgotten
            recent.discard(value)
            model.discard(value)
            continue
        added = value not in model
        assert recent.add(value) is added
        if added:
            model.add(value)
            if len(model) > 64:
                model.discard(min(model))
        assert all((v in recent) == (v in model) for v in (value, value + 1, value - 1))


def test_a_full_memory_of_a_busy_connection_is_small() -> None:
    recent = RecentIds(4096)
    for message_id in range(1_000_000, 1_010_000):
        assert recent.add(message_id)
    assert 1_000_000 not in recent and 1_009_999 in recent
    assert recent._ids.buffer_info()[1] == 4096
    assert recent._ids.itemsize == 4  # machine integers, 4 bytes each while ids fit
    assert recent.add(999_999)  # below all it holds: not kept
    assert 999_999 not in recent and 1_005_904 in recent


def test_ids_past_32_bits_are_remembered_exactly() -> None:
    recent = RecentIds(8)
    for message_id in (2**32 - 2, 2**32 - 1):
        assert recent.add(message_id)
    for message_id in (2**32, 2**32 + 1, 2**40):
        assert recent.add(message_id)
        assert not recent.add(message_id)  # given already
    assert all(v in recent for v in (2**32 - 2, 2**32 - 1, 2**32, 2**32 + 1, 2**40))
    assert 2**32 + 2 not in recent and 2**40 - 1 not in recent
    recent.discard(2**40)
    assert 2**40 not in recent and recent.add(2**40)
