"""Defects an outside-in probe found, each pinned against a scripted upstream that answers what the
test tells it to (odd usage objects, tool fees) and records what the gateway sent it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from costplane.app import Application
from costplane.config import parse_config
from costplane.core.notify import Notification
from costplane.gateway.app import create_gateway
from costplane.gateway.keys import create_key
from costplane.ledger.types import CostEvent
from costplane.serving import BackgroundServer

BEDROCK_KEY_ENV = "COSTPLANE_PROBE_FIXES_BEDROCK_KEY"
PROTOCOLS = ("openai-chat", "responses", "anthropic", "gemini", "bedrock")
BUNDLE = "---\n".join(f"""
kind: Budget
name: capped-{protocol}
scope: ctx.team == "capped-{protocol}"
amount: 1 USD
window: {{rolling: 1h}}
enforcement: hard
""" for protocol in PROTOCOLS)


@dataclass
class Upstream:
    """What the scripted upstream answers next, and every request it received (path and query)."""

    reply: dict[str, Any] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def answer(request: Request) -> Response:
            self.seen.append(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            events = self.reply.get("__sse__")
            if isinstance(events, list):
                return Response(b"".join(b"data: " + (e if isinstance(e, bytes) else orjson.dumps(e)) + b"\n\n"
                                         for e in events), media_type="text/event-stream")
            return Response(orjson.dumps(self.reply), media_type="application/json")

        return Starlette(routes=[Route("/{rest:path}", answer, methods=["POST", "GET"])])


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.sent.append(notification)


@dataclass
class Probe:
    url: str
    app: Application
    upstream: Upstream
    notes: Recorder

    def key(self, team: str = "probe") -> str:
        return create_key(self.app.store, "probe", {"team": team})[0]

    def last_event(self) -> CostEvent:
        return self.app.store.list_events(limit=1)[0]


def _start(tmp: Path, upstream: Upstream, **pricing: Any) -> Iterator[Probe]:
    bundle = tmp / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "bundle.yaml").write_text(BUNDLE)
    notes = Recorder()
    with BackgroundServer(upstream.app()) as fake:
        providers = {
            "openai": {"type": "openai", "base_url": f"{fake.url}/v1", "models": ["gpt-*"]},
            "anthropic": {"type": "anthropic", "base_url": f"{fake.url}/v1", "models": ["claude-*"]},
            "gemini": {"type": "gemini", "base_url": fake.url, "models": ["gemini-*"]},
            "aws": {"type": "bedrock", "base_url": fake.url, "region": "us-east-1", "api_key_env": BEDROCK_KEY_ENV,
                    "models": ["*anthropic.*", "amazon.*"]},
        }
        raw: dict[str, Any] = {"store": f"sqlite:///{tmp}/gateway.db", "bundle": str(bundle), "providers": providers}
        if pricing:
            raw["pricing"] = pricing
        app = Application(parse_config(raw, base=tmp), notifier=notes)
        with BackgroundServer(create_gateway(app)) as server:
            yield Probe(server.url, app, upstream, notes)
        app.close()


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BEDROCK_KEY_ENV, "probe-bedrock-key")
        yield from _start(tmp_path_factory.mktemp("probe-fixes"), Upstream())


@pytest.fixture(scope="module")
def charging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    """A gateway whose unknown-price rule is `charge`: unpriced units are charged without and flagged."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BEDROCK_KEY_ENV, "probe-bedrock-key")
        yield from _start(tmp_path_factory.mktemp("probe-charge"), Upstream(),
                          unknown_price={"action": "charge", "input": "10", "output": "30"})


# -- one call per protocol: (path, headers, body, reply without usage, where the usage goes) -----------
def _call(probe: Probe, protocol: str, usage: Any, *, body: dict[str, Any] | None = None,
          reply: dict[str, Any] | None = None, key: str | None = None,
          headers: dict[str, str] | None = None) -> httpx.Response:
    secret = key or probe.key()
    if protocol == "openai-chat":
        path, auth = "/v1/chat/completions", {"authorization": f"Bearer {secret}"}
        sent = {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
        answer: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": "hello"}}],
                                  "usage": usage}
    elif protocol == "responses":
        path, auth = "/v1/responses", {"authorization": f"Bearer {secret}"}
        sent = {"model": "gpt-4o-mini", "max_output_tokens": 50, "input": "hi"}
        answer = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-4o-mini",
                  "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                              "content": [{"type": "output_text", "text": "hello", "annotations": []}]}],
                  "usage": usage}
    elif protocol == "anthropic":
        path, auth = "/v1/messages", {"x-api-key": secret, "anthropic-version": "2023-06-01"}
        sent = {"model": "claude-3-5-haiku-20241022", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
        answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
                  "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn", "usage": usage}
    elif protocol == "gemini":
        path, auth = "/v1beta/models/gemini-2.0-flash:generateContent", {"x-goog-api-key": secret}
        sent = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 50}}
        answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hello"}]}, "finishReason": "STOP"}],
                  "usageMetadata": usage, "responseId": "r1"}
    else:
        path, auth = "/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse", {"authorization": f"Bearer {secret}"}
        sent = {"messages": [{"role": "user", "content": [{"text": "hi"}]}], "inferenceConfig": {"maxTokens": 50}}
        answer = {"output": {"message": {"role": "assistant", "content": [{"text": "hello"}]}},
                  "stopReason": "end_turn", "usage": usage, "metrics": {"latencyMs": 1}}
    if usage is None:
        answer.pop("usage", None)
        answer.pop("usageMetadata", None)
    probe.upstream.reply = {**answer, **(reply or {})}
    return httpx.post(probe.url + path, json=body if body is not None else sent, headers={**auth, **(headers or {})},
                      timeout=20)


_INPUT_KEY = {"openai-chat": "prompt_tokens", "responses": "input_tokens", "anthropic": "input_tokens",
              "gemini": "promptTokenCount", "bedrock": "inputTokens"}
_OUTPUT_KEY = {"openai-chat": "completion_tokens", "responses": "output_tokens", "anthropic": "output_tokens",
               "gemini": "candidatesTokenCount", "bedrock": "outputTokens"}


def _usage(protocol: str, input_count: Any, output_count: Any = 5) -> dict[str, Any]:
    return {_INPUT_KEY[protocol]: input_count, _OUTPUT_KEY[protocol]: output_count}


# -- a usage without valid counts is no usage: the bound, status estimated -------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("odd", ["empty", "string", "float", "negative", "boolean", "total-only"])
def test_a_usage_without_a_valid_input_count_is_charged_the_bound(probe: Probe, protocol: str, odd: str) -> None:
    usage: Any = {
        "empty": {}, "string": _usage(protocol, "12"), "float": _usage(protocol, 12.0),
        "negative": _usage(protocol, -12), "boolean": _usage(protocol, True), "total-only": {"total_tokens": 30},
    }[odd]
    got = _call(probe, protocol, usage)
    assert got.status_code == 200, got.text
    event = probe.last_event()
    assert event.status == "estimated"
    assert event.cost_nano > 0
    assert event.usage.output_tokens == 50  # the bound: max_tokens
    # the same call with no usage at all is charged alike
    assert _call(probe, protocol, None).status_code == 200
    assert probe.last_event().cost_nano == event.cost_nano


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_valid_usage_with_odd_other_counts_is_charged_as_reported(probe: Probe, protocol: str) -> None:
    got = _call(probe, protocol, _usage(protocol, 12, "5"))
    assert got.status_code == 200, got.text
    event = probe.last_event()
    assert (event.status, event.usage.input_tokens, event.usage.output_tokens) == ("ok", 12, 0)


# -- usage above the bound: charged as reported, flagged over_bound, alerted --------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_usage_above_the_bound_is_charged_flagged_and_alerted(probe: Probe, protocol: str) -> None:
    before = len(probe.notes.sent)
    key = probe.key(f"capped-{protocol}")
    got = _call(probe, protocol, _usage(protocol, 10, 10**9), key=key)
    assert got.status_code == 200, got.text
    event = probe.last_event()
    assert event.status == "over_bound"
    assert event.usage.output_tokens == 10**9  # the money is spent: settled at the reported usage
    alerts = [n for n in probe.notes.sent[before:] if n.data.get("reason") == "over_bound"]
    assert len(alerts) == 1 and alerts[0].decision_id == event.decision_id and alerts[0].kind == "usage_over_bound"
    assert alerts[0].data["cost_nano"] == event.cost_nano > alerts[0].data["bound_nano"]
    # the budget saw the spend: the next call of the team is refused
    assert _call(probe, protocol, _usage(protocol, 10, 5), key=key).status_code in (402, 403, 429)


def test_usage_within_the_bound_is_not_flagged(probe: Probe) -> None:
    before = len(probe.notes.sent)
    assert _call(probe, "openai-chat", _usage("openai-chat", 10, 50)).status_code == 200
    assert probe.last_event().status == "ok"
    assert not [n for n in probe.notes.sent[before:] if n.data.get("reason") == "over_bound"]


# -- Gemini: the path model cannot rewrite the upstream URL -----------------------------------------
@pytest.mark.parametrize("method", ["countTokens", "generateContent", "embedContent"])
@pytest.mark.parametrize("model", ["gemini-2.0-flash%3Fkey=X%26a=", "gemini-2.0-flash%23frag", "gemini%20flash",
                                   "-gemini", "gemini-2.0-flash%25"])
def test_a_gemini_model_that_is_not_a_model_id_is_refused(probe: Probe, method: str, model: str) -> None:
    seen = len(probe.upstream.seen)
    body = {"contents": [{"parts": [{"text": "hi"}]}]} if method != "embedContent" else {
        "content": {"parts": [{"text": "hi"}]}}
    got = httpx.post(f"{probe.url}/v1beta/models/{model}:{method}", json=body,
                     headers={"x-goog-api-key": probe.key()}, timeout=20)
    assert got.status_code == 400, got.text
    error = got.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["message"].startswith("model:")
    assert error["details"][1]["fieldViolations"][0]["field"] == "model"
    assert len(probe.upstream.seen) == seen  # nothing reached the upstream


def test_a_plain_gemini_model_reaches_the_upstream_path_unchanged(probe: Probe) -> None:
    probe.upstream.reply = {"totalTokens": 3}
    got = httpx.post(f"{probe.url}/v1beta/models/gemini-2.0-flash-001:countTokens",
                     json={"contents": [{"parts": [{"text": "hi"}]}]}, headers={"x-goog-api-key": probe.key()},
                     timeout=20)
    assert got.status_code == 200, got.text
    assert probe.upstream.seen[-1] == "/v1beta/models/gemini-2.0-flash-001:countTokens"


def test_gemini_batch_embeddings_must_name_the_path_model(probe: Probe) -> None:
    seen = len(probe.upstream.seen)
    body = {"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}},
                         {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}}]}
    got = httpx.post(f"{probe.url}/v1beta/models/text-embedding-004:batchEmbedContents", json=body,
                     headers={"x-goog-api-key": probe.key()}, timeout=20)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["details"][1]["fieldViolations"][0]["field"] == "requests[1].model"
    assert len(probe.upstream.seen) == seen


# -- Bedrock InvokeModel tier headers, any case ------------------------------------------------------
@pytest.mark.parametrize(("header", "value"), [("x-amzn-bedrock-service-tier", "Priority"),
                                               ("x-amzn-bedrock-service-tier", "RESERVED"),
                                               ("x-amzn-bedrock-performanceconfig-latency", "Optimized")])
def test_bedrock_invoke_tier_headers_are_checked_without_case(probe: Probe, header: str, value: str) -> None:
    seen = len(probe.upstream.seen)
    got = httpx.post(f"{probe.url}/model/anthropic.claude-3-5-haiku-20241022-v1:0/invoke",
                     json={"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20,
                           "messages": [{"role": "user", "content": "hi"}]},
                     headers={"authorization": f"Bearer {probe.key()}", header: value}, timeout=20)
    assert got.status_code == 400, got.text
    assert header in got.json()["message"]
    assert len(probe.upstream.seen) == seen


@pytest.mark.parametrize("value", ["Priority", "RESERVED"])
def test_bedrock_converse_service_tier_is_checked_without_case(probe: Probe, value: str) -> None:
    got = _call(probe, "bedrock", _usage("bedrock", 1), body={
        "messages": [{"role": "user", "content": [{"text": "hi"}]}], "serviceTier": {"type": value}})
    assert got.status_code == 400, got.text
    assert "serviceTier.type" in got.json()["message"]


# -- tool fees: declared billed units, so the unknown-price rule applies ----------------------------
TOOLS = {
    "anthropic": {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}],
                  "tools": [{"type": "code_execution_20250825", "name": "code_execution"}]},
    "responses-code": {"model": "gpt-4o-mini", "input": "hi",
                       "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]},
    "responses-image": {"model": "gpt-4o-mini", "input": "hi", "tools": [{"type": "image_generation"}]},
    "gemini": {"contents": [{"parts": [{"text": "hi"}]}], "tools": [{"googleMaps": {}}]},
}
_UNIT = {"anthropic": "code_executions", "responses-code": "code_executions", "responses-image": "image_generations",
         "gemini": "maps_searches"}


def _tool_call(probe: Probe, case: str) -> httpx.Response:
    protocol = {"anthropic": "anthropic", "gemini": "gemini"}.get(case, "responses")
    reply: dict[str, Any] = {}
    if case == "anthropic":
        reply = {"content": [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "code_execution", "input": {}},
                             {"type": "text", "text": "done"}], "model": "claude-sonnet-4-5"}
    elif case.startswith("responses"):
        item = "code_interpreter_call" if case == "responses-code" else "image_generation_call"
        reply = {"output": [{"type": item, "id": "ci_1", "status": "completed"},
                            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                             "content": [{"type": "output_text", "text": "done", "annotations": []}]}]}
    else:
        reply = {"candidates": [{"content": {"role": "model", "parts": [{"text": "near"}]}, "finishReason": "STOP",
                                 "groundingMetadata": {"groundingChunks": [{"maps": {"title": "a cafe"}}]}}]}
    return _call(probe, protocol, _usage(protocol, 10, 5), body=TOOLS[case], reply=reply)


@pytest.mark.parametrize("case", sorted(TOOLS))
def test_a_tool_fee_with_no_price_is_denied_before_the_call(probe: Probe, case: str) -> None:
    seen = len(probe.upstream.seen)
    got = _tool_call(probe, case)
    assert got.status_code == 403, got.text
    assert _UNIT[case] in got.text
    assert len(probe.upstream.seen) == seen


@pytest.mark.parametrize("case", sorted(TOOLS))
def test_a_tool_fee_with_no_price_is_charged_without_and_flagged(charging: Probe, case: str) -> None:
    got = _tool_call(charging, case)
    assert got.status_code == 200, got.text
    event = charging.last_event()
    assert event.status == "unpriced" and event.price_flagged
    assert event.usage.count(_UNIT[case]) == 1
    assert any(n.kind == "unknown_price" and _UNIT[case] in n.data.get("units", ()) for n in charging.notes.sent)


# -- a stream that completes without usage ----------------------------------------------------------
def test_a_stream_that_completes_without_usage_is_settled_as_an_estimate(probe: Probe) -> None:
    chunk = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
             "choices": [{"index": 0, "delta": {"content": "hello"}, "finish_reason": None}]}
    last = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    probe.upstream.reply = {"__sse__": [chunk, last, b"[DONE]"]}
    with httpx.stream("POST", probe.url + "/v1/chat/completions", timeout=20,
                      headers={"authorization": f"Bearer {probe.key()}"},
                      json={"model": "gpt-4o-mini", "max_tokens": 50, "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as got:
        assert got.status_code == 200
        assert b"hello" in got.read()
    event = probe.last_event()
    assert event.cost_nano > 0
    assert event.status == "estimated"
