"""Ids of decisions, reservations, events, keys and environments: `prefix_` + a UUIDv7 in hex,
unique, and sorting in the order they were made (across milliseconds)."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from datetime import UTC, datetime

from costplane.core.decider import new_id


def test_an_id_is_a_uuidv7_with_its_prefix_and_the_current_time() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id("dec")
    after = time.time_ns() // 1_000_000
    assert re.fullmatch(r"dec_[0-9a-f]{32}", made)
    value = uuid.UUID(made.removeprefix("dec_"))
    assert value.version == 7 and value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after  # the leading 48 bits: Unix time in milliseconds
    assert datetime.fromtimestamp((value.int >> 80) / 1000, UTC).year >= 2026


def test_ids_are_unique_and_sort_by_the_millisecond_they_were_made_in() -> None:
    batches: list[list[str]] = []
    for _ in range(4):
        batches.append([new_id("evt") for _ in range(2_000)])
        time.sleep(0.002)
    every = [i for batch in batches for i in batch]
    assert len(set(every)) == len(every)
    for earlier, later in itertools.pairwise(batches):
        assert max(earlier) < min(later)  # made in an earlier millisecond: sorts first
    # the random part really varies within a millisecond (74 random bits, not a counter)
    assert len({i[-16:] for i in batches[0]}) == len(batches[0])


def _random_bits(made: str) -> int:
    return uuid.UUID(made.split("_", 1)[1]).int & ((1 << 80) - 1)


def test_a_forked_child_never_repeats_its_parent_s_random_bits() -> None:
    import os

    new_id("dec")  # the parent holds unread randomness now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, "\n".join(new_id("dec") for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split("\n")
    os.waitpid(pid, 0)
    parent = [new_id("dec") for _ in range(50)]
    assert len(child) == 50
    assert not {_random_bits(i) for i in child} & {_random_bits(i) for i in parent}


def test_ids_made_on_many_threads_at_once_are_unique() -> None:
    import threading

    made: list[list[str]] = [[] for _ in range(8)]

    def make(out: list[str]) -> None:
        out.extend(new_id("res") for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in made for i in out]
    assert len(set(every)) == len(every) == 40_000
