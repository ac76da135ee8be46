"""Calls through the gateway with the official OpenAI and Anthropic SDKs, and what the clients saw.

Every call is bounded: at most `in_flight` at once (a semaphore), a per-call timeout, no SDK
retries. A denial is not an exception here: it is an `Outcome` with the gateway's error code
and its message verbatim, counted in the `Tally`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai

__all__ = ["Clients", "Headers", "Outcome", "Tally", "from_error", "from_headers"]

Headers = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int
    code: str = ""  # the gateway's x-costplane-error-code (or the error body's code)
    message: str = ""  # the error message, verbatim
    effect: str = ""  # x-costplane-effect: route | mutate | "" (allow)
    model: str = ""  # x-costplane-model: what was actually called
    cache: str = ""  # x-costplane-cache: hit | ""


@dataclass
class PersonaCount:
    requests: int = 0
    ok: int = 0
    denied: int = 0
    last: str = ""


@dataclass
class Tally:
    """What the demo's clients observed (one event loop writes it; no locking needed)."""

    requests: int = 0
    ok: int = 0
    effects: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0
    denials: Counter[str] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)  # (persona, code) -> first message
    personas: dict[str, PersonaCount] = field(default_factory=dict)

    def copy(self) -> Tally:
        """A snapshot another thread may read while the event loop keeps counting."""
        return Tally(self.requests, self.ok, Counter(self.effects), self.cache_hits, Counter(self.denials),
                     dict(self.examples),
                     {n: PersonaCount(c.requests, c.ok, c.denied, c.last) for n, c in self.personas.items()})

    def record(self, persona: str, outcome: Outcome) -> None:
        self.requests += 1
        count = self.personas.setdefault(persona, PersonaCount())
        count.requests += 1
        if outcome.ok:
            self.ok += 1
            count.ok += 1
            if outcome.effect:
                self.effects[outcome.effect] += 1
            if outcome.cache == "hit":
                self.cache_hits += 1
            effect = f" ({outcome.effect})" if outcome.effect else ""
            count.last = f"{outcome.status} {outcome.model}{effect}"
        else:
            self.denials[outcome.code] += 1
            count.denied += 1
            self.examples.setdefault((persona, outcome.code), outcome.message)
            count.last = f"{outcome.status} {outcome.code}"


def from_headers(status: int, headers: Mapping[str, str]) -> Outcome:
    return Outcome(True, status, effect=headers.get("x-costplane-effect", ""),
                   model=headers.get("x-costplane-model", ""), cache=headers.get("x-costplane-cache", ""))


def from_error(exc: Exception) -> Outcome:
    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        body: Any = exc.body
        detail = body.get("error", body) if isinstance(body, dict) else {}
        code = exc.response.headers.get("x-costplane-error-code") or (
            detail.get("code") if isinstance(detail, dict) else None) or f"http_{exc.status_code}"
        message = detail.get("message") if isinstance(detail, dict) else None
        return Outcome(False, exc.status_code, str(code), str(message or exc))
    if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        return Outcome(False, 0, "client_timeout", str(exc))
    return Outcome(False, 0, "connection_error", str(exc))


_ERRORS = (openai.APIError, anthropic.APIError)


class Clients:
    """One AsyncOpenAI and one AsyncAnthropic client per persona key, all against the gateway."""

    def __init__(self, gateway_url: str, keys: Mapping[str, str], tally: Tally, *,
                 in_flight: int = 8, timeout_s: float = 30.0) -> None:
        self.tally = tally
        self._slots = asyncio.Semaphore(in_flight)
        self._timeout = timeout_s
        self._openai = {p: openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=k, max_retries=0,
                                              timeout=timeout_s) for p, k in keys.items()}
        self._anthropic = {p: anthropic.AsyncAnthropic(base_url=gateway_url, api_key=k, max_retries=0,
                                                       timeout=timeout_s) for p, k in keys.items()}

    def _timed_out(self, exc: BaseException) -> Outcome:
        return Outcome(False, 0, "client_timeout", f"no answer within {self._timeout + 5} s {exc}".strip())

    async def close(self) -> None:
        for oa in self._openai.values():
            await oa.close()
        for an in self._anthropic.values():
            await an.close()

    async def chat(self, persona: str, model: str, prompt: str | Sequence[Mapping[str, str]],
                   headers: Headers, *, max_tokens: int | None = None, stream: bool = False,
                   client: openai.AsyncOpenAI | None = None) -> Outcome:
        """An OpenAI chat completion (streamed or not) as `persona` (with `client`: an Azure OpenAI one)."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        extra: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
        client = client or self._openai[persona]

        async def send() -> Outcome:
            raw = await client.chat.completions.with_raw_response.create(
                model=model, messages=messages,  # type: ignore[arg-type]
                stream=stream, extra_headers=dict(headers), **extra)
            outcome = from_headers(raw.http_response.status_code, raw.headers)
            parsed: Any = raw.parse()  # openai's raw response parses synchronously
            if stream:
                async for _ in parsed:
                    pass
            return outcome

        return await self._call(persona, send)

    async def message(self, persona: str, model: str, prompt: str, headers: Headers, *,
                      max_tokens: int = 512, stream: bool = False, system: str | None = None) -> Outcome:
        """An Anthropic message (streamed or not) as `persona`."""
        extra: dict[str, Any] = {} if system is None else {"system": system}
        client = self._anthropic[persona]

        async def send() -> Outcome:
            raw = await client.messages.with_raw_response.create(
                model=model, max_tokens=max_tokens, messages=[{"role": "user", "content": prompt}],
                stream=stream, extra_headers=dict(headers), **extra)
            outcome = from_headers(raw.http_response.status_code, raw.headers)
            parsed: Any = await raw.parse()
            if stream:
                async for _ in parsed:
                    pass
            return outcome

        return await self._call(persona, send)

    async def embed(self, persona: str, model: str, texts: Sequence[str], headers: Headers) -> Outcome:
        client = self._openai[persona]

        async def send() -> Outcome:
            raw = await client.embeddings.with_raw_response.create(
                model=model, input=list(texts), extra_headers=dict(headers))
            outcome = from_headers(raw.http_response.status_code, raw.headers)
            raw.parse()
            return outcome

        return await self._call(persona, send)

    async def _call(self, persona: str, send: Callable[[], Awaitable[Outcome]]) -> Outcome:
        return await self.bounded(persona, send)

    async def bounded(self, persona: str, send: Callable[[], Awaitable[Outcome]], *, tally: bool = True) -> Outcome:
        """One bounded call: a concurrency slot, a deadline, errors turned into outcomes, tallied
        (`tally=False`: `send` tallies its own responses; only a call that got none is counted here)."""
        async with self._slots:
            try:
                async with asyncio.timeout(self._timeout + 5):
                    outcome = await send()
            except _ERRORS as exc:
                outcome = from_error(exc)
            except TimeoutError as exc:
                outcome = self._timed_out(exc)
        if tally or outcome.status == 0:
            self.tally.record(persona, outcome)
        return outcome
