"""Failed dashboard logins, throttled per user name and per client address.

After `limit` failures within `window` seconds for the same user name (case-folded) or from the same
client address, further logins for that name or from that address are refused with 429 before any
password is checked, until the oldest of those failures is older than the window; the refusal says
when to retry. A successful login clears the failures of its user name (an address's failures age
out). Kept in memory per server process (bounded: the least recently failed keys are forgotten
beyond `capacity`), so with several replicas behind a balancer each one counts on its own: an
attacker gets at most `limit` tries per replica and window.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["LoginThrottle", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a login is refused now and when to retry."""

    subject: str  # "this user name" | "this address"
    retry_at: datetime
    retry_after: int  # whole seconds, at least 1


class LoginThrottle:
    def __init__(self, limit: int = 5, window: int = 900, capacity: int = 10_000) -> None:
        self.limit, self.window, self.capacity = limit, window, capacity
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("this user name", f"user:{name.strip().casefold()}"), ("this address", f"addr:{address}")

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        cutoff = now - timedelta(seconds=self.window)
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def check(self, name: str, address: str, now: datetime) -> Refusal | None:
        """A Refusal when `name` or `address` has `limit` failures within the window, else None."""
        with self._lock:
            worst: Refusal | None = None
            for subject, key in self._keys(name, address):
                times = self._recent(key, now)
                if len(times) >= self.limit:
                    retry_at = times[-self.limit] + timedelta(seconds=self.window)
                    wait = max(1, -int(-(retry_at - now).total_seconds() // 1))
                    if worst is None or retry_at > worst.retry_at:
                        worst = Refusal(subject, retry_at, wait)
            return worst

    def failed(self, name: str, address: str, now: datetime) -> None:
        with self._lock:
            for _, key in self._keys(name, address):
                times = self._recent(key, now)
                times.append(now)
                while len(times) > self.limit:
                    times.popleft()
                self._failures[key] = times
                self._failures.move_to_end(key)
            while len(self._failures) > self.capacity:
                self._failures.popitem(last=False)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(name, "")[0][1], None)
