"""`SimulatorState`: everything one simulator instance remembers (no globals)."""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from typing import Any

from costplane.simulator.caching import PrefixCache
from costplane.simulator.config import SimulatorConfig

__all__ = ["RecordedRequest", "SimulatorState"]

RecordedRequest = dict[str, Any]


class SimulatorState:
    """Counters, the prompt-prefix cache, the seeded fault RNG and the recent requests."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.started_at = time.time()
        self.cache = PrefixCache(
            config.cache_capacity,
            min_tokens=config.cache_min_tokens,
            increment=config.cache_increment,
            anthropic_min_tokens=config.anthropic_cache_min_tokens,
        )
        self.rng = random.Random(config.seed)
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.recent: deque[RecordedRequest] = deque(maxlen=config.record_requests)

    def next_request(self, path: str) -> int:
        """Count a request to `path` and return its sequence number (1-based)."""
        self.requests += 1
        self.by_path[path] += 1
        return self.requests

    def record(self, entry: RecordedRequest) -> None:
        if self.config.record_requests:
            self.recent.append(entry)

    def draw_fault(self) -> str | None:
        """A fault kind with probability `fault_rate` (seeded, reproducible), else None."""
        config = self.config
        if config.fault_rate <= 0.0:
            return None
        if self.rng.random() >= config.fault_rate:
            return None
        faults = config.faults
        return faults[0] if len(faults) == 1 else self.rng.choice(faults)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "faults": dict(self.faults),
            "cached_prefixes": len(self.cache),
            "uptime_s": round(time.time() - self.started_at, 3),
        }

    def reset(self) -> None:
        """Forget counters, cached prefixes and recorded requests; re-seed the fault RNG."""
        self.cache.clear()
        self.rng = random.Random(self.config.seed)
        self.requests = 0
        self.by_path.clear()
        self.faults.clear()
        self.recent.clear()
