"""Gateway latency histograms, per process, recorded by a pure ASGI middleware.

Only the governed LLM routes are observed (a fixed set of paths, so labels stay bounded):
the time to the response's first byte (headers; for a stream, when it starts) and the
total time until its last byte. Each observation is a bisect into a fixed bucket list and
two additions — a few microseconds, far under the 1 ms hot-path budget. These histograms
are per process: each replica reports its own; sum them in PromQL.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from costplane.metrics.exposition import Family

__all__ = ["BUCKETS", "OBSERVED_PATHS", "LatencyHistograms", "LatencyMiddleware"]

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
OBSERVED_PATHS = frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/messages"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0  # seconds (a duration, not money)


class LatencyHistograms:
    """Two histogram families keyed by (path, status class)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first_byte: dict[tuple[str, str], _Histogram] = {}
        self._total: dict[tuple[str, str], _Histogram] = {}

    def observe(self, path: str, status: int, first_byte: float | None, total: float | None) -> None:
        key = (path, f"{status // 100}xx")
        with self._lock:
            for table, seconds in ((self._first_byte, first_byte), (self._total, total)):
                if seconds is None:
                    continue
                hist = table.get(key)
                if hist is None:
                    hist = table[key] = _Histogram()
                hist.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
                hist.total += seconds

    def families(self) -> list[Family]:
        out = []
        for name, table, what in (
            ("costplane_gateway_first_byte_seconds", self._first_byte, "time to the first response byte"),
            ("costplane_gateway_request_duration_seconds", self._total, "time to the last response byte"),
        ):
            family = Family(name, "histogram", f"Gateway {what} of governed LLM requests (per process)")
            with self._lock:
                snapshot = {key: (list(h.counts), h.total) for key, h in table.items()}
            for (path, status), (counts, total) in sorted(snapshot.items()):
                running = 0
                for bound, count in zip((*BUCKETS, None), counts, strict=True):
                    running += count
                    family.add(running, "_bucket", path=path, status=status,
                               le="+Inf" if bound is None else repr(bound))
                family.add(repr(total), "_sum", path=path, status=status)
                family.add(running, "_count", path=path, status=status)
            out.append(family)
        return out


class LatencyMiddleware:
    """Pure ASGI middleware: observes OBSERVED_PATHS into `histograms`, passes everything else through."""

    def __init__(self, app: ASGIApp, histograms: LatencyHistograms) -> None:
        self.app = app
        self.histograms = histograms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope.get("type") != "http" or path not in OBSERVED_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        first: float | None = None

        async def timed_send(message: Message) -> None:
            nonlocal status, first
            if message["type"] == "http.response.start":
                status = int(message.get("status", 500))
                first = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.histograms.observe(path, status, first, time.perf_counter() - started)
