"""Live updates for the dashboard: one poller per server notices that the ledger changed and wakes
every open page over server-sent events; the pages then re-fetch their (role-scoped) data.

The event carries no data, only "something changed", so a stream cannot leak another team's numbers.
The poller runs only while at least one page listens.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from costplane.ledger.store import Store

__all__ = ["ChangeFeed"]


class ChangeFeed:
    def __init__(self, store: Store, *, interval_s: float = 1.0, heartbeat_s: float = 15.0,
                 lifetime_s: float = 300.0) -> None:
        self._store = store
        self._interval = interval_s
        self._heartbeat = heartbeat_s
        self._lifetime = lifetime_s  # the browser's EventSource reconnects; a bounded stream never pins shutdown
        self._listeners: set[asyncio.Queue[str]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._last = ""

    def fingerprint(self) -> str:
        """Changes whenever a decision is made, an event lands or an environment changes state or TTL (blocking)."""
        decisions = self._store.list_decisions(limit=1)
        events = self._store.list_events(limit=1)
        environments = self._store.list_environments(limit=200)
        parts = [d.id for d in decisions] + [e.id for e in events]
        parts += [f"{e.id}:{e.state}:{e.expires_at.isoformat()}" for e in environments]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    async def _poll(self) -> None:
        while self._listeners:
            try:
                current = await asyncio.to_thread(self.fingerprint)
            except Exception:  # a store hiccup must not kill live updates; the next poll retries
                current = self._last
            if current != self._last:
                self._last = current
                for queue in list(self._listeners):
                    if queue.empty():
                        queue.put_nowait(current)
            await asyncio.sleep(self._interval)
        self._poller = None

    async def stream(self) -> AsyncIterator[bytes]:
        """`text/event-stream` body: `event: refresh` on every change, a comment line as heartbeat."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._listeners.add(queue)
        if self._poller is None:
            self._last = await asyncio.to_thread(self.fingerprint)
            self._poller = asyncio.create_task(self._poll())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lifetime
        try:
            yield b"retry: 2000\n: connected\n\n"
            while loop.time() < deadline:
                try:
                    version = await asyncio.wait_for(queue.get(), timeout=self._heartbeat)
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
                yield f"event: refresh\ndata: {version}\n\n".encode()
        finally:
            self._listeners.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._listeners)
