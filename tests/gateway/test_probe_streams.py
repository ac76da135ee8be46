"""Streams cut at every point: an upstream that sends the first N bytes of a real stream (recorded
from the simulator) and then drops the connection. Whatever N, the client gets a 200 stream that
ends in the protocol's own error event (or completes), never a traceback; the call is settled once,
never at $0, never above the worst case it reserved, and no reservation stays open."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.app import create_gateway
from costplane.gateway.keys import create_key
from costplane.serving import BackgroundServer
from costplane.simulator import bedrock_api
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

from .conformance.cases import CASES
from .conformance.conftest import BEDROCK_KEY_ENV, PROVIDERS

PROMPT = "tell me about budgets " * 4
#: what the gateway sends upstream for each streamed protocol: (path, body, headers)
UPSTREAM: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    "openai-chat": ("/v1/chat/completions", {"model": "gpt-4o-mini", "max_tokens": 60, "stream": True,
                                             "stream_options": {"include_usage": True},
                                             "messages": [{"role": "user", "content": PROMPT}]}, {}),
    "openai-responses": ("/v1/responses", {"model": "gpt-4o-mini", "input": PROMPT, "max_output_tokens": 200,
                                           "stream": True}, {}),
    "anthropic-messages": ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 60, "stream": True,
                                            "messages": [{"role": "user", "content": PROMPT}]},
                           {"anthropic-version": "2023-06-01"}),
    "gemini": ("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
               {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                "generationConfig": {"maxOutputTokens": 200}}, {}),
    "bedrock": ("/model/amazon.nova-lite-v1:0/converse-stream",
                {"messages": [{"role": "user", "content": [{"text": PROMPT}]}], "inferenceConfig": {"maxTokens": 60}},
                {"authorization": f"Bearer {bedrock_api.SIMULATOR_API_KEY}"}),
    "azure-openai": ("/openai/deployments/prod-mini/chat/completions?api-version=2024-10-21",
                     {"max_tokens": 60, "stream": True, "stream_options": {"include_usage": True},
                      "messages": [{"role": "user", "content": PROMPT}]}, {}),
}


@dataclass
class Recorded:
    body: bytes
    content_type: str


class Cutter:
    """An upstream answering every request with the first `cut` bytes of the recorded stream of its
    path, then closing the connection (no final body message)."""

    def __init__(self, streams: dict[str, Recorded]) -> None:
        self.streams = streams
        self.cut = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        await request.body()
        recorded = next(r for path, r in self.streams.items() if scope["path"] == path.split("?")[0])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", recorded.content_type.encode())]})
        await send({"type": "http.response.body", "body": recorded.body[:self.cut], "more_body": True})


@dataclass
class Rig:
    url: str
    app: Application
    cutter: Cutter


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp: Path = tmp_path_factory.mktemp("cuts")
    streams: dict[str, Recorded] = {}
    with BackgroundServer(create_app(SimulatorConfig())) as sim:
        for path, body, headers in UPSTREAM.values():
            reply = httpx.post(sim.url + path, json=body, headers={"authorization": "Bearer sim", **headers},
                               timeout=20)
            assert reply.status_code == 200, reply.text
            streams[path] = Recorded(reply.content, reply.headers["content-type"])
    cutter = Cutter(streams)
    (tmp / "bundle").mkdir()
    (tmp / "bundle" / "bundle.yaml").write_text(textwrap.dedent("""
        kind: Policy
        name: allow-all
        on: llm.request
        when: "true"
        effect: allow
        reason: every call is allowed
        """))
    with pytest.MonkeyPatch.context() as patch, BackgroundServer(cutter) as upstream:
        patch.setenv(BEDROCK_KEY_ENV, bedrock_api.SIMULATOR_API_KEY)
        providers = {name: {k: (v.format(sim=upstream.url) if isinstance(v, str) else v) for k, v in spec.items()}
                     for name, spec in PROVIDERS.items()}
        app = Application(parse_config({"store": f"sqlite:///{tmp}/gateway.db", "bundle": str(tmp / "bundle"),
                                        "providers": providers}, base=tmp))
        with BackgroundServer(create_gateway(app)) as gateway:
            yield Rig(gateway.url, app, cutter)
        app.close()


def _cut_points(size: int) -> list[int]:
    """Every early byte (the first event's header and data), then evenly spread points, then the
    last bytes before the end."""
    points = set(range(0, min(size, 24), 3)) | {size * i // 13 for i in range(1, 13)} | {size - 2, size - 1}
    return sorted(p for p in points if 0 <= p < size)


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_a_stream_cut_at_any_byte_is_settled_once_above_zero_and_within_its_reservation(rig: Rig,
                                                                                       name: str) -> None:
    case = CASES[name]
    assert case.stream is not None
    path = UPSTREAM[name][0]
    size = len(rig.cutter.streams[path].body)
    for point in _cut_points(size):
        rig.cutter.cut = point
        team = f"cut-{name}-{point}"
        secret, _ = create_key(rig.app.store, "cuts", {"team": team})
        wire = case.stream(case.model, PROMPT)
        reply = httpx.request(wire.method, rig.url + wire.path, json=wire.body,
                              headers={**case.auth(secret), **wire.headers}, timeout=20)
        assert reply.status_code == 200, (point, reply.text[:300])
        assert case.stream_error_marker in reply.content, (point, reply.content[-300:])
        reserved = Decimal(reply.headers["x-costplane-cost-usd"])  # a stream's header: the worst case held
        events = [e for e in rig.app.store.list_events(limit=100_000) if e.context.team == team]
        assert len(events) == 1, point
        event = events[0]
        assert event.status in ("cut", "ok"), (point, event.status)
        assert event.cost_nano > 0, point
        assert Decimal(event.cost_nano) <= reserved * 10**9, (point, event.cost_nano, reserved)
    assert rig.app.store.open_reservations() == 0


def test_an_sse_buffer_joins_a_crlf_split_across_chunks() -> None:
    from costplane.gateway.protocols.base import SSEBuffer

    stream = b'data: {"a": 1}\r\n\r\ndata: {"b": 2}\r\n\r\n'
    for cut in range(1, len(stream)):
        buffer = SSEBuffer()
        events = buffer.events(stream[:cut]) + buffer.events(stream[cut:])
        assert events == [b'data: {"a": 1}', b'data: {"b": 2}'], cut
    one_byte = SSEBuffer()
    assert [e for i in range(len(stream)) for e in one_byte.events(stream[i:i + 1])] == [
        b'data: {"a": 1}', b'data: {"b": 2}']
