"""`SimulatorConfig`: every knob of the upstream simulator in one frozen dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_MODELS", "FAULT_KINDS", "SimulatorConfig", "parse_fault"]

#: Fault kinds that are not an HTTP status code.
FAULT_KINDS: tuple[str, ...] = ("timeout", "cut")

#: Models listed by `GET /v1/models`. Any model name is accepted by the endpoints.
DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-5",
    "gpt-5-mini",
    "o3",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-opus-4-6",
)


def parse_fault(value: str) -> str:
    """Normalise a fault name: an HTTP error status (400-599), `timeout` or `cut`."""
    text = value.strip().lower()
    if text in FAULT_KINDS:
        return text
    if text.isdigit() and 400 <= int(text) <= 599:
        return text
    raise ValueError(f"unknown fault {value!r}: expected an HTTP status 400-599, 'timeout' or 'cut'")


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Settings of one simulator instance.

    latency_ms: delay before the first byte of every answer.
    stream_delay_ms: extra delay between two streamed tokens.
    fault_rate: probability (0..1) that a completion/message/embedding request gets a fault,
        drawn from a RNG seeded with `seed` (so a run is reproducible), kind chosen from `faults`.
    timeout_hang_s: how long a `timeout` fault keeps the request open at most.
    min_output_tokens/max_output_tokens: range of the default answer length.
    cache_min_tokens/cache_increment: OpenAI-style automatic prompt caching granularity.
    anthropic_cache_min_tokens: shortest prefix a `cache_control` breakpoint caches (0 = any).
    cache_capacity: how many prompt-prefix hashes the server remembers (oldest dropped first).
    record_requests: how many recent requests `GET /_simulator/requests` keeps.
    usage_profiles: model glob -> extra usage to report (see `simulator.usage_shapes`).
    """

    latency_ms: float = 0.0
    stream_delay_ms: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = ("500",)
    seed: int = 0
    timeout_hang_s: float = 30.0
    min_output_tokens: int = 16
    max_output_tokens: int = 200
    cache_min_tokens: int = 1024
    cache_increment: int = 128
    anthropic_cache_min_tokens: int = 0
    cache_capacity: int = 100_000
    record_requests: int = 100
    models: tuple[str, ...] = field(default=DEFAULT_MODELS)
    usage_profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.stream_delay_ms < 0:
            raise ValueError("latency_ms and stream_delay_ms must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within [0, 1], got {self.fault_rate}")
        if not self.faults:
            raise ValueError("faults must name at least one fault kind")
        object.__setattr__(self, "faults", tuple(parse_fault(f) for f in self.faults))
        if self.timeout_hang_s < 0:
            raise ValueError("timeout_hang_s must be >= 0")
        if not 1 <= self.min_output_tokens <= self.max_output_tokens:
            raise ValueError("need 1 <= min_output_tokens <= max_output_tokens")
        if self.cache_increment < 1 or self.cache_min_tokens < 0 or self.anthropic_cache_min_tokens < 0:
            raise ValueError("cache sizes must be positive")
        if self.cache_capacity < 0 or self.record_requests < 0:
            raise ValueError("cache_capacity and record_requests must be >= 0")
