"""The loop guard's in-memory filter: which (run, request hash) pairs may have a call in the window.

The loop guard counts the calls of one run with one normalised request within `gateway.loop_window`
(`count_recent_requests`). Almost every request is new — its count is 0 — and reading the store to
learn that costs a round trip per request on PostgreSQL. `LoopFilter` answers "no call of this pair
in the window" from memory: a Bloom filter per time bucket of the window, fed with every call the
process learns of (its own settlements at once, every other process's through the store's feed,
ledger/loopfeed.py). A "no" is definite (a Bloom filter has no false negatives): the count is 0.
A "maybe" — a call of the pair was seen, or a false positive — is answered by the store, as
without the filter. So the filter never changes a count; it only saves the reads that would have
found nothing.

Memory is fixed: `buckets + 1` bit arrays of `bits` bits (default 17 × 128 KiB). Past its design
load (about 100,000 calls a bucket at 1 % false positives, i.e. ~2,700 calls a second for a
10-minute window) false positives grow and so do the store reads; the answers stay exact.
"""

from __future__ import annotations

import threading
from datetime import datetime

__all__ = ["LoopFilter"]


class LoopFilter:
    """Time-bucketed Bloom filter of (run, request hash) pairs; thread-safe."""

    def __init__(self, window_seconds: float, *, buckets: int = 16, bits: int = 1 << 20) -> None:
        if window_seconds <= 0:
            raise ValueError(f"window_seconds: expected > 0, got {window_seconds!r}")
        if bits < 64 or bits & (bits - 1):
            raise ValueError(f"bits: expected a power of two ≥ 64, got {bits!r}")
        self.window = float(window_seconds)
        self.width = self.window / max(1, buckets)  # seconds a bucket covers
        self._mask = bits - 1
        self._bytes = bits // 8
        self._buckets: dict[int, bytearray] = {}
        self._lock = threading.Lock()
        self.added = 0  # pairs added, for tests and measurements

    def _positions(self, run: str, request_hash: str) -> tuple[int, int, int]:
        """Three bit positions by double hashing (the pair's hash is per process: only compared in it)."""
        value = hash((run, request_hash))
        low, high, mask = value & 0xFFFF_FFFF, ((value >> 32) & 0xFFFF_FFFF) | 1, self._mask
        return low & mask, (low + high) & mask, (low + 2 * high) & mask

    def _index(self, when: datetime) -> int:
        return int(when.timestamp() // self.width)

    def add(self, run: str, request_hash: str, ts: datetime) -> None:
        """A call of the pair at `ts` (any process)."""
        self.add_at(run, request_hash, ts.timestamp())

    def add_at(self, run: str, request_hash: str, seconds: float) -> None:
        """`add` with the call's time as Unix seconds (a store's rows, without a datetime each)."""
        index = int(seconds // self.width)
        positions = self._positions(run, request_hash)
        with self._lock:
            bucket = self._buckets.get(index)
            if bucket is None:
                bucket = self._buckets[index] = bytearray(self._bytes)
            for position in positions:
                bucket[position >> 3] |= 1 << (position & 7)
            self.added += 1

    def maybe(self, run: str, request_hash: str, since: datetime) -> bool:
        """False: no call of the pair at or after `since` was added (definite). True: there may be one."""
        first = self._index(since)
        a, b, c = self._positions(run, request_hash)
        with self._lock:
            buckets = [bucket for index, bucket in self._buckets.items() if index >= first]
        for bucket in buckets:
            if (bucket[a >> 3] >> (a & 7)) & 1 and (bucket[b >> 3] >> (b & 7)) & 1 and (bucket[c >> 3] >> (c & 7)) & 1:
                return True
        return False

    def prune(self, now: datetime) -> None:
        """Drop the buckets wholly before the window (and a bucket's width of slack)."""
        oldest = self._index(now) - int(self.window // self.width) - 1
        with self._lock:
            for index in [i for i in self._buckets if i < oldest]:
                del self._buckets[index]

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()

    def __len__(self) -> int:
        """The buckets held."""
        return len(self._buckets)
