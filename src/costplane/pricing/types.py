"""Token usage and the price sheet of one model, as the rest of costplane sees them.

Prices are per token type in USD per million tokens (Decimal, exact). Costs are
integers of nano-USD. `PriceSheet.cost_nano` is on the gateway's hot path, so
the sheet pre-computes each rate as an integer of femto-USD per token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

__all__ = [
    "TOKEN_TYPES",
    "PriceSheet",
    "TokenUsage",
    "UnknownPrice",
]

#: Token types that can carry their own price.
TOKEN_TYPES: tuple[str, ...] = ("input", "cache_read", "cache_write", "output", "reasoning")

_FEMTO_PER_USD_PER_MTOK = 10**9  # USD/MTok -> femto-USD/token
_FEMTO_PER_NANO = 10**6


class UnknownPrice(LookupError):
    """No price is known for this model (and no default is declared)."""

    def __init__(self, model: str, provider: str | None) -> None:
        self.model = model
        self.provider = provider
        where = f" from provider {provider!r}" if provider else ""
        super().__init__(f"no known price for model {model!r}{where}")


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts of one call, in the genai-prices convention.

    input_tokens is ALL prompt tokens, including cache reads and cache writes;
    output_tokens is ALL generated tokens, including reasoning. The sub-counts say
    how many of those were of the special kind.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                     "reasoning_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError("cache_read_tokens + cache_write_tokens exceed input_tokens")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("reasoning_tokens exceed output_tokens")

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cache_read_tokens - self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class PriceSheet:
    """The effective prices of one model at one moment.

    `input`/`output` are required; the others fall back: cache_read and
    cache_write to input, reasoning to output. `tiers` are genai-prices "cliff"
    tiers: when the call's input_tokens exceed `start`, every token of that type
    is charged at the tier's rate (sorted ascending by start).
    """

    model: str
    provider: str
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    tiers: tuple[tuple[int, dict[str, Decimal]], ...] = ()  # (start, declared rates that change)
    source: str = "genai-prices"
    effective_from: date | None = None
    flagged_default: bool = False  # true when this is a declared default for an unknown model
    _femto: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    #: (tier start or -1 for the base, dearest input-side rate, dearest output-side rate), femto-USD
    _max_rates: tuple[tuple[int, int, int], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_femto", {name: _to_femto(rate) for name, rate in self.rates().items()})
        levels = []
        for start, rates in [(-1, self.rates(0))] + [(start, self.rates(start + 1)) for start, _ in self.tiers]:
            in_rate = max(_to_femto(rates[k]) for k in ("input", "cache_read", "cache_write"))
            out_rate = max(_to_femto(rates["output"]), _to_femto(rates["reasoning"]))
            levels.append((start, in_rate, out_rate))
        object.__setattr__(self, "_max_rates", tuple(levels))

    def rates(self, input_tokens: int = 0) -> dict[str, Decimal]:
        """USD per million tokens for every token type at this call size.

        Tiers apply to the *declared* rates first; only then do undeclared rates
        fall back (cache_read/cache_write to input, reasoning to output), so a
        tier that raises `input` raises an undeclared cache rate with it.
        """
        declared: dict[str, Decimal | None] = {
            "input": self.input, "cache_read": self.cache_read, "cache_write": self.cache_write,
            "output": self.output, "reasoning": self.reasoning,
        }
        for start, overrides in self.tiers:
            if input_tokens > start:
                declared.update(overrides)
        input_rate = declared["input"] if declared["input"] is not None else self.input
        output_rate = declared["output"] if declared["output"] is not None else self.output
        return {
            "input": input_rate,
            "cache_read": declared["cache_read"] if declared["cache_read"] is not None else input_rate,
            "cache_write": declared["cache_write"] if declared["cache_write"] is not None else input_rate,
            "output": output_rate,
            "reasoning": declared["reasoning"] if declared["reasoning"] is not None else output_rate,
        }

    def cost_nano(self, usage: TokenUsage) -> int:
        """Exact cost of `usage`, rounded half-up to a whole nano-USD."""
        femto = self._femto
        if self.tiers and any(usage.input_tokens > start for start, _ in self.tiers):
            femto = {name: _to_femto(rate) for name, rate in self.rates(usage.input_tokens).items()}
        total = (
            usage.uncached_input_tokens * femto["input"]
            + usage.cache_read_tokens * femto["cache_read"]
            + usage.cache_write_tokens * femto["cache_write"]
            + (usage.output_tokens - usage.reasoning_tokens) * femto["output"]
            + usage.reasoning_tokens * femto["reasoning"]
        )
        return (total + _FEMTO_PER_NANO // 2) // _FEMTO_PER_NANO

    def max_cost_nano(self, input_tokens: int, output_tokens: int) -> int:
        """Upper bound of a call with at most `input_tokens` input and `output_tokens` output:
        every token at the dearest rate of its side (input: input, cache read, cache write;
        output: output, reasoning) among the tiers such a call can reach; rounded up."""
        in_rate = out_rate = 0
        for start, tier_in, tier_out in self._max_rates:
            if start < input_tokens:  # a tier applies only above its start
                in_rate = max(in_rate, tier_in)
                out_rate = max(out_rate, tier_out)
        total = input_tokens * in_rate + output_tokens * out_rate
        return -(-total // _FEMTO_PER_NANO)


def _to_femto(rate_per_mtok: Decimal) -> int:
    scaled = rate_per_mtok * _FEMTO_PER_USD_PER_MTOK
    if scaled != scaled.to_integral_value():
        raise ValueError(f"price {rate_per_mtok} USD/MTok has more precision than 1e-15 USD per token")
    return int(scaled)
