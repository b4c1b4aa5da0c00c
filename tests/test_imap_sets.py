"""IMAP sequence sets for long UID lists: compact, complete, and never a command line over the limit."""

from __future__ import annotations

import random

from processor.mail.commands import message_sets


def _expand(sets: list[list[str]]) -> list[int]:
    uids = []
    for items in sets:
        for item in items:
            first, _, last = item.partition(":")
            uids += range(int(first), int(last or first) + 1)
    return uids


def test_runs_become_ranges_and_gaps_stay_out():
    assert message_sets([9, 4, 5, 6, 12, 7, 14, 13]) == [["4:7", "9", "12:14"]]
    assert message_sets([]) == []


def test_every_uid_once_in_order_and_each_set_under_the_limit():
    rng = random.Random(3)
    uids = sorted(rng.sample(range(1, 200_000), 20_000))
    sets = message_sets(uids + uids[:50], max_chars=500)
    assert _expand(sets) == uids
    assert len(sets) > 1 and all(len(",".join(items)) <= 500 for items in sets)


def test_for_fetch_each_uid_stays_a_number():
    sets = message_sets(list(range(1, 3001)), max_chars=1000, ranges=False)
    assert [uid for items in sets for uid in items] == list(range(1, 3001))
    assert all(isinstance(uid, int) for items in sets for uid in items)
    assert all(len(",".join(map(str, items))) <= 1000 for items in sets)
