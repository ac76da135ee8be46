"""Instrument the official `openai` and `anthropic` clients (sync and async, plain and streamed).

    client = costplane.instrument(OpenAI(base_url="http://gateway/v1", api_key="cpk_…"), mode="gateway")
    client = costplane.instrument(OpenAI(), mode="direct", session=costplane.Session("sqlite:///c.db"))

The client's `chat.completions.create` and `responses.create` (OpenAI), or `messages.create` and the
`messages.stream(...)` helper (Anthropic), is wrapped on that client instance only:

* **gateway** mode: the current context goes out as `x-costplane-<dimension>` headers and
  W3C `baggage` (`costplane.<dimension>=…`); the gateway meters and records.
* **direct** mode: the call goes to the provider; costplane meters usage from the
  response (streams: the usage chunk, which it asks for and hides again; a Responses stream's
  final `response.completed` / `response.incomplete` / `response.failed` event), prices it with
  the Catalog and records a cost event through the session. A session with a store, or one
  talking to a costplane server, admits the call before it is sent (`calls.py`).

In both modes the active run's guard is checked before the call. Works from worker
threads: the wrapper reads the calling thread's context (carry it with `wrap` / `ContextPool`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from costplane.sdk.calls import ANTHROPIC, OPENAI, RESPONSES, Call, Protocol
from costplane.sdk.session import Session

__all__ = ["instrument"]

C = TypeVar("C")
MODES = ("gateway", "direct")


def instrument(client: C, *, mode: str = "direct", session: Session | None = None) -> C:
    """Wrap `client` in place (and return it). `session` is where direct mode records when no
    run with a session is active."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    module = type(client).__module__.split(".")[0]
    if module == "openai":
        resource, proto = client.chat.completions, OPENAI  # type: ignore[attr-defined]
    elif module == "anthropic":
        resource, proto = client.messages, ANTHROPIC  # type: ignore[attr-defined]
    else:
        raise TypeError(f"costplane.instrument supports openai and anthropic clients, got {type(client).__name__}")
    if getattr(resource.create, "__costplane__", False):
        return client
    is_async = type(client).__name__.startswith("Async") or inspect.iscoroutinefunction(resource.create)
    resource.create = _wrap(resource.create, proto, mode, session, is_async)
    responses = getattr(client, "responses", None) if proto is OPENAI else None
    if responses is not None and callable(getattr(responses, "create", None)):
        responses.create = _wrap(responses.create, RESPONSES, mode, session, is_async)
    if proto is ANTHROPIC and hasattr(resource, "stream"):
        # messages.stream() posts on its own, not through create(): wrap it too, so no stream goes unmetered
        resource.stream = _wrap_stream_helper(resource.stream, mode, session, is_async)
    return client


def _wrap_stream_helper(stream: Callable[..., Any], mode: str, session: Session | None,
                        is_async: bool) -> Callable[..., Any]:
    def open_stream(*args: Any, **kwargs: Any) -> Any:
        call = Call(ANTHROPIC, mode, session, kwargs)  # the guard's pre-check happens here
        try:
            manager = stream(*args, **call.kwargs)
        except BaseException:
            call.fail()
            raise
        return _AsyncStreamManager(manager, call) if is_async else _StreamManager(manager, call)

    open_stream.__costplane__ = True  # type: ignore[attr-defined]
    return open_stream


def _settle_snapshot(call: Call, message_stream: Any, cut: bool) -> None:
    """Meter an Anthropic MessageStream from its accumulated message (usage from message_start,
    output tokens from message_delta); a stream that never started charged nothing."""
    try:
        snapshot = message_stream.current_message_snapshot if message_stream is not None else None
    except Exception:  # the SDK raises when no message_start arrived
        snapshot = None
    if snapshot is None:
        call.fail()
        return
    finished = getattr(snapshot, "stop_reason", None) is not None and not cut
    call.finish(snapshot.usage, getattr(snapshot, "model", None), "ok" if finished else "cut")


class _StreamManager:
    """anthropic's MessageStreamManager, settled from the stream's snapshot when the block ends."""

    def __init__(self, manager: Any, call: Call) -> None:
        self._manager = manager
        self._call = call
        self._stream: Any = None

    def __enter__(self) -> Any:
        try:
            self._stream = self._manager.__enter__()
        except BaseException:
            self._call.fail()
            raise
        return self._stream

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self._manager.__exit__(exc_type, exc, tb)
        finally:
            _settle_snapshot(self._call, self._stream, cut=exc_type is not None)


class _AsyncStreamManager:
    """anthropic's AsyncMessageStreamManager, settled from the stream's snapshot when the block ends."""

    def __init__(self, manager: Any, call: Call) -> None:
        self._manager = manager
        self._call = call
        self._stream: Any = None

    async def __aenter__(self) -> Any:
        try:
            self._stream = await self._manager.__aenter__()
        except BaseException:
            self._call.fail()
            raise
        return self._stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self._manager.__aexit__(exc_type, exc, tb)
        finally:
            _settle_snapshot(self._call, self._stream, cut=exc_type is not None)


def _wrap(create: Callable[..., Any], proto: Protocol, mode: str, session: Session | None,
          is_async: bool) -> Callable[..., Any]:
    if is_async:
        async def acreate(*args: Any, **kwargs: Any) -> Any:
            call = Call(proto, mode, session, kwargs)
            try:
                result = await create(*args, **call.kwargs)
            except BaseException:
                call.fail()
                raise
            if call.stream:
                return _AsyncMetered(result, _Meter(call))
            parsed = _parsed(result)
            if inspect.isawaitable(parsed):
                parsed = await parsed
            call.finish(getattr(parsed, "usage", None), getattr(parsed, "model", None),
                        served_tier=getattr(parsed, "service_tier", None), response=parsed)
            return result

        acreate.__costplane__ = True  # type: ignore[attr-defined]
        return acreate

    def screate(*args: Any, **kwargs: Any) -> Any:
        call = Call(proto, mode, session, kwargs)
        try:
            result = create(*args, **call.kwargs)
        except BaseException:
            call.fail()
            raise
        if call.stream:
            return _Metered(result, _Meter(call))
        parsed = _parsed(result)
        call.finish(getattr(parsed, "usage", None), getattr(parsed, "model", None),
                    served_tier=getattr(parsed, "service_tier", None), response=parsed)
        return result

    screate.__costplane__ = True  # type: ignore[attr-defined]
    return screate


def _parsed(result: Any) -> Any:
    """The completion of a `with_raw_response` call (its `.parse()`, cached by the SDK), else the result."""
    if hasattr(result, "http_response") and callable(getattr(result, "parse", None)):
        return result.parse()
    return result


#: the events that end a Responses API stream, each carrying the final response with its usage
_RESPONSES_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class _Meter:
    """Usage of a stream, from OpenAI chunks or Anthropic events, settled exactly once."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self._call: Call | None = call
        self.usage: Any = None
        self.model: str | None = None
        self.start: dict[str, Any] | None = None
        self.output = 0
        self.deltas = 0
        self.done = False
        self.tier: Any = None  # OpenAI chunks' service_tier: the tier served
        self.response: Any = None  # a Responses stream's final response (its usage and output items)

    def see(self, item: Any) -> bool:
        """Record one chunk/event; False when it should be hidden from the caller."""
        if self.call.proto.endpoint == "responses":
            event = str(getattr(item, "type", ""))
            if event.endswith(".delta"):
                self.deltas += 1
            elif event in _RESPONSES_FINAL:
                self.response = getattr(item, "response", None)
                self.model = getattr(self.response, "model", None) or self.model
                self.tier = getattr(self.response, "service_tier", None)
                self.usage = getattr(self.response, "usage", None)
                self.done = event != "response.failed" or self.usage is not None
            return True
        if self.call.proto.name == "openai":
            self.model = getattr(item, "model", None) or self.model
            self.tier = getattr(item, "service_tier", None) or self.tier
            usage = getattr(item, "usage", None)
            choices = getattr(item, "choices", None)
            if choices:
                self.deltas += 1
            if usage is not None:
                self.usage = usage
                self.done = True
                return not (self.call.hide_usage and not choices)
            return True
        kind = getattr(item, "type", None)
        if kind == "message_start":
            message = item.message
            self.model = getattr(message, "model", None)
            dump = getattr(message.usage, "model_dump", None)
            self.start = dict(dump() if callable(dump) else message.usage)
            self.output = int(self.start.get("output_tokens") or 0)
        elif kind == "message_delta":
            self.output = max(self.output, int(getattr(item.usage, "output_tokens", 0) or 0))
            dump = getattr(item.usage, "model_dump", None)
            delta = dict(dump() if callable(dump) else item.usage or {})
            if self.start is not None:  # cumulative fields a delta may carry (server_tool_use, …)
                self.start.update((k, v) for k, v in delta.items() if v is not None and k != "output_tokens")
            self.done = True
        elif kind == "content_block_delta":
            self.deltas += 1
        return True

    def settle(self, cut: bool) -> None:
        call, self._call = self._call, None
        if call is None:  # settled already
            return
        status = "ok" if self.done and not cut else "cut"
        if call.proto.endpoint == "responses":
            if self.usage is None:  # cut before the final event: the prompt and one token per delta
                self.usage = {"input_tokens": call.proto.measure(call.kwargs).estimate, "output_tokens": self.deltas}
                status = "cut"
            call.finish(self.usage, self.model, status, served_tier=self.tier, response=self.response)
        elif call.proto.name == "openai":
            if self.usage is None:  # cut before the usage chunk: the prompt and one token per delta
                self.usage = {"prompt_tokens": call.proto.measure(call.kwargs).estimate,
                              "completion_tokens": self.deltas}
                status = "cut"
            call.finish(self.usage, self.model, status, served_tier=self.tier)
        elif self.start is None:
            call.fail()
        else:
            call.finish({**self.start, "output_tokens": max(self.output, 0 if self.done else self.deltas)},
                        self.model, status)


class _Metered:
    """A sync stream (openai.Stream / anthropic.Stream) that meters as it is iterated."""

    def __init__(self, stream: Any, meter: _Meter) -> None:
        self._stream = stream
        self._meter = meter

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self._stream:
                if self._meter.see(item):
                    yield item
        except BaseException:
            self._meter.settle(cut=True)
            raise
        self._meter.settle(cut=False)

    def __enter__(self) -> _Metered:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._meter.settle(cut=True)
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _AsyncMetered:
    """An async stream that meters as it is iterated."""

    def __init__(self, stream: Any, meter: _Meter) -> None:
        self._stream = stream
        self._meter = meter

    async def _items(self) -> AsyncIterator[Any]:
        try:
            async for item in self._stream:
                if self._meter.see(item):
                    yield item
        except BaseException:
            self._meter.settle(cut=True)
            raise
        self._meter.settle(cut=False)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()

    async def __aenter__(self) -> _AsyncMetered:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        self._meter.settle(cut=True)
        await self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
