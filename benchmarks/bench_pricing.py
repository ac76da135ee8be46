"""Benchmark of the pricing hot path: `Catalog.resolve` (cached) + `PriceSheet.cost_nano`.

Run: .venv/bin/python benchmarks/bench_pricing.py
Target (docs/pricing.md): < 5 µs per cached resolve + cost_nano.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from costplane.pricing import Catalog, PricingConfig, TokenUsage

CASES = [
    ("gpt-4o-mini", "openai", "fixed price"),
    ("claude-sonnet-4-5-20250929", None, "tiered, provider found by name"),
    ("claude-sonnet-4-6", "anthropic", "dated history (2 prices)"),
    ("deepseek-chat", "deepseek", "daily off-peak window"),
    ("acme-private-llm", "internal", "override, effective-dated"),
]


def _per_call(fn: Callable[[], object], number: int = 200_000, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def main() -> None:
    config = PricingConfig.parse({"overrides": [
        {"model": "acme-private-llm", "provider": "internal", "input": "0.50", "output": "1.50"},
        {"model": "acme-private-llm", "provider": "internal", "input": "0.40", "output": "1.20",
         "effective_from": "2026-01-01"},
    ]})
    start = time.perf_counter()
    catalog = Catalog.load(config)
    print(f"Catalog.load: {(time.perf_counter() - start) * 1e3:.1f} ms")
    usage = TokenUsage(input_tokens=1200, output_tokens=350, cache_read_tokens=256, reasoning_tokens=100)
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    print(f"{'model':32} {'case':32} {'first':>9} {'at=None':>9} {'at=dt':>9}   (µs per resolve+cost_nano)")
    for model, provider, case in CASES:
        start = time.perf_counter()
        catalog.resolve(model, provider, at)
        first = (time.perf_counter() - start) * 1e6

        def now(model: str = model, provider: str | None = provider) -> int:
            return catalog.resolve(model, provider).cost_nano(usage)

        def dated(model: str = model, provider: str | None = provider) -> int:
            return catalog.resolve(model, provider, at).cost_nano(usage)

        print(f"{model:32} {case:32} {first:9.1f} {_per_call(now):9.2f} {_per_call(dated):9.2f}")
    sheet = catalog.resolve("gpt-4o-mini", "openai")
    print(f"cost_nano alone: {_per_call(lambda: sheet.cost_nano(usage)):.2f} µs")
    print(f"max_cost_nano alone: {_per_call(lambda: sheet.max_cost_nano(4000, 1000)):.2f} µs")


if __name__ == "__main__":
    main()
