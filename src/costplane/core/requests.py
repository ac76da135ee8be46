"""The values that flow through the decision core: a request to admit and its outcome."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from costplane.attribution.context import Context
from costplane.config import ProviderConfig
from costplane.httpstatus import ACCEPTED, CREATED, OK, denial_status
from costplane.ledger.types import ClaimState, Reservation
from costplane.pricing.types import PriceSheet

__all__ = ["ACCEPTED", "CREATED", "OK", "Admission", "Denial", "LlmRequest", "Settlement"]


@dataclass(frozen=True, slots=True)
class LlmRequest:
    """What an enforcement point knows about an LLM call before it is made."""

    protocol: str  # openai | anthropic: the wire format the client speaks
    endpoint: str  # chat.completions | embeddings | messages
    model: str  # as the client asked
    input_bound: int  # provable upper bound of input tokens
    input_estimate: int  # typical count, shown to policies as request.input_tokens
    max_tokens: int | None  # as the client set it, None if not
    stream: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)  # other request parameters, for CEL
    loop_hash: str | None = None  # normalised hash (loop detection)
    cache_hash: str | None = None  # exact hash, set only when the response cache may be used

    def decision_input(self) -> dict[str, Any]:
        """What the decisions log keeps of this request besides its evaluated facts: enough to
        rebuild it (`from_decision_input`) and decide it again."""
        return {"protocol": self.protocol, "endpoint": self.endpoint, "model": self.model,
                "input_tokens_bound": self.input_bound, "input_tokens_estimate": self.input_estimate,
                "max_tokens": self.max_tokens, "stream": self.stream, "params": dict(self.params),
                "request_hash": self.loop_hash, "cache_hash": self.cache_hash}

    @classmethod
    def from_decision_input(cls, recorded: Mapping[str, Any]) -> LlmRequest:
        """The request a logged `llm.request` decision was made on (its `input`)."""
        asked = recorded.get("max_tokens")
        params = recorded.get("params")
        return cls(
            # logs written before the protocol was recorded: Anthropic's endpoint names its family
            protocol=str(recorded.get("protocol") or ("anthropic" if recorded.get("endpoint") == "messages"
                                                       else "openai")),
            endpoint=str(recorded.get("endpoint", "")),
            model=str(recorded.get("model", "")), input_bound=int(recorded.get("input_tokens_bound") or 0),
            input_estimate=int(recorded.get("input_tokens_estimate") or 0),
            max_tokens=asked if isinstance(asked, int) and not isinstance(asked, bool) else None,
            stream=bool(recorded.get("stream")), params=dict(params) if isinstance(params, Mapping) else {},
            loop_hash=_text(recorded.get("request_hash")), cache_hash=_text(recorded.get("cache_hash")),
        )

    def cel(self, provider: str | None) -> dict[str, Any]:
        facts: dict[str, Any] = {k: v for k, v in self.params.items() if v is not None}
        facts.update(
            model=self.model,
            provider=provider or "",
            endpoint=self.endpoint,
            input_tokens=self.input_estimate,
            input_tokens_bound=self.input_bound,
            max_tokens=self.max_tokens or 0,
            stream=self.stream,
        )
        return facts


@dataclass(frozen=True, slots=True)
class Denial:
    """A request refused before any money was spent, with everything needed to explain it.

    The HTTP layers choose the status from the code (`costplane.httpstatus.denial_status`)."""

    code: str  # budget_exceeded | policy_denied | unknown_price | call_limit_exceeded | …
    message: str  # names the policy or budget, the amounts, the decision id and revision
    decision_id: str | None  # None when nothing was logged (malformed input)
    retryable: bool = False
    remaining_nano: int | None = None

    @property
    def status(self) -> int:
        """The HTTP status of this refusal (`costplane.httpstatus`), for callers that read it here."""
        return denial_status(self)


@dataclass(frozen=True, slots=True)
class Admission:
    """A request let through: where to send it, with what, and what it holds."""

    decision_id: str
    effect: str  # allow | route | mutate
    context: Context
    request: LlmRequest
    provider: ProviderConfig
    model: str  # the model to send upstream (routed / aliased)
    max_tokens: int  # what to send upstream (0 for embeddings)
    params: Mapping[str, Any]  # parameters to set on the upstream body (mutations)
    price: PriceSheet
    reservation: Reservation | None
    states: tuple[ClaimState, ...]
    worst_nano: int  # the provable upper bound of this call's cost (what every claim holds)
    reason: str = ""

    @property
    def remaining_nano(self) -> int | None:
        return tightest_remaining(self.states)


@dataclass(frozen=True, slots=True)
class Settlement:
    event_id: str
    cost_nano: int
    remaining_nano: int | None


def tightest_remaining(states: tuple[ClaimState, ...]) -> int | None:
    remaining = [s.remaining_nano for s in states if s.remaining_nano is not None]
    return min(remaining) if remaining else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
