"""Amazon Bedrock Runtime: `Converse`, `ConverseStream`, and `InvokeModel` /
`InvokeModelWithResponseStream` for Anthropic models.

Routes (the model id is the path segment, URL-encoded by the AWS SDKs)::

    POST /model/{modelId}/converse                      Converse (JSON)
    POST /model/{modelId}/converse-stream               ConverseStream (binary event stream)
    POST /model/{modelId}/invoke                        InvokeModel, Anthropic Messages body
    POST /model/{modelId}/invoke-with-response-stream   the same, streamed as `chunk` events

Every request must be authenticated like Bedrock's: a SigV4 signature (`AWS4-HMAC-SHA256`, service
`bedrock`) made with a secret of `BedrockAuth.access_keys`, or a Bedrock API key of
`BedrockAuth.api_keys` as a bearer token. By default these are the published simulator credentials
below. Errors are Bedrock's: `{"message": …}` with the `x-amzn-ErrorType` header.

Usage follows Bedrock: `inputTokens` EXCLUDES `cacheReadInputTokens` and `cacheWriteInputTokens`;
`cachePoint` blocks mark cacheable prefixes (the Anthropic caching rule of `simulator.caching`). A
request with tools whose last message carries no tool result answers with a tool call of the first
tool (or the one `toolChoice` names). Faults (`x-simulator-fault`, `fault_rate`) and cut streams
work as on the other endpoints; a stream is cut after about half of its content, before its usage.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from costplane.gateway.eventstream import encode_event
from costplane.gateway.sigv4 import parse_authorization, verify
from costplane.simulator.answers import Answer, plan_answer, request_digest
from costplane.simulator.caching import AnthropicPromptUsage
from costplane.simulator.endpoint import OUTPUT_TOKENS_HEADER
from costplane.simulator.errors import InvalidRequest
from costplane.simulator.faults import CutResponse, HangResponse, fault_status, requested_fault
from costplane.simulator.sse import EventStreamResponse
from costplane.simulator.state import SimulatorState
from costplane.simulator.tokens import count_tokens

__all__ = ["SIMULATOR_ACCESS_KEY_ID", "SIMULATOR_API_KEY", "SIMULATOR_SECRET_ACCESS_KEY", "BedrockAuth",
           "bedrock_error", "routes"]

SIMULATOR_ACCESS_KEY_ID = "AKIACOSTPLANESIMULATOR"
SIMULATOR_SECRET_ACCESS_KEY = "costplane+simulator/bedrock+secret+access+key"  # published: the simulator is no secret
SIMULATOR_API_KEY = "ABSKcostplanesimulatorbedrockapikey"
EVENT_STREAM = "application/vnd.amazon.eventstream"
_ERROR_TYPES = {400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException",
                404: "ResourceNotFoundException", 408: "ModelTimeoutException", 424: "ModelErrorException",
                429: "ThrottlingException", 500: "InternalServerException", 503: "ServiceUnavailableException"}
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"  # Bedrock pads events with a "p" field


@dataclass(frozen=True, slots=True)
class BedrockAuth:
    """Credentials the simulator accepts: SigV4 access key id -> secret, and Bedrock API keys."""

    access_keys: Mapping[str, str] = field(
        default_factory=lambda: {SIMULATOR_ACCESS_KEY_ID: SIMULATOR_SECRET_ACCESS_KEY})
    api_keys: frozenset[str] = frozenset({SIMULATOR_API_KEY})


class _Refused(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def bedrock_error(status: int, message: str, error_type: str | None = None,
                  headers: dict[str, str] | None = None) -> Response:
    """Bedrock's error: `{"message"}` and `x-amzn-ErrorType` (with the service suffix AWS adds)."""
    kind = error_type or _ERROR_TYPES.get(status, "InternalServerException" if status >= 500 else
                                          "ValidationException")
    merged = {"x-amzn-errortype": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/",
              **(headers or {})}
    return Response(orjson.dumps({"message": message}), status_code=status, headers=merged,
                    media_type="application/json")


def _authenticate(request: Request, body: bytes, auth: BedrockAuth) -> None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        if header[7:].strip() not in auth.api_keys:
            raise _Refused(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        return
    parsed = parse_authorization(header) if header else None
    if parsed is None:
        raise _Refused(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    secret = auth.access_keys.get(parsed.access_key_id)
    if secret is None:
        raise _Refused(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    url = f"http://{request.headers.get('host', '')}{raw_path.decode('latin-1')}"
    url += f"?{query.decode('latin-1')}" if query else ""
    if parsed.service != "bedrock" or not verify(request.method, url, request.headers, body, secret):
        raise _Refused(403, "InvalidSignatureException", "The request signature we calculated does not match the "
                                                         "signature you provided. Check your AWS Secret Access Key "
                                                         "and signing method.")


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """Converse content blocks as Anthropic-shaped blocks (what the caching/token rules read);
    a `cachePoint` puts `cache_control` on the block before it."""
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: expected a list of content blocks")
    out: list[dict[str, Any]] = []
    for index, block in enumerate(content):
        if not isinstance(block, dict) or len(block) != 1:
            raise InvalidRequest(f"{where}.{index}: a content block must have exactly one member")
        (kind, value), = block.items()
        if kind == "cachePoint":
            if out:
                out[-1]["cache_control"] = {"type": "ephemeral", "ttl": (value or {}).get("ttl", "5m")}
            continue
        if kind == "text":
            out.append({"type": "text", "text": str(value)})
        elif kind == "toolResult":
            texts = [str(p.get("text") if "text" in p else orjson.dumps(p.get("json")).decode())
                     for p in (value or {}).get("content") or [] if isinstance(p, dict)]
            out.append({"type": "text", "text": "".join(texts), "tool_result": True})
        elif kind == "toolUse":
            out.append({"type": "text", "text": orjson.dumps((value or {}).get("input")).decode()})
        else:
            out.append({"type": kind})  # images, documents …: no text to count
    return out


def _tool_input(schema: Any, digest: bytes) -> dict[str, Any]:
    """A deterministic argument object for a tool's JSON schema."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    out: dict[str, Any] = {}
    for i, (name, spec) in enumerate(sorted((properties or {}).items())[:8]):
        kind = spec.get("type") if isinstance(spec, dict) else None
        byte = digest[i % len(digest)]
        out[name] = (byte % 100 if kind in ("integer", "number") else byte % 2 == 0 if kind == "boolean"
                     else ("Paris", "Berlin", "Lisbon", "Oslo")[byte % 4])
    return out


@dataclass(frozen=True, slots=True)
class _Reply:
    answer: Answer
    prompt: AnthropicPromptUsage
    tool: tuple[str, str, dict[str, Any]] | None  # (tool use id, name, input)
    reasoning: tuple[str, ...]  # reasoning text pieces (ConverseStream reasoningContent)
    cache_ttl: str

    @property
    def output_tokens(self) -> int:
        tool = count_tokens(orjson.dumps(self.tool[2]).decode()) if self.tool else 0
        return self.answer.output_tokens + tool

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool else "max_tokens" if self.answer.truncated else "end_turn"


def _reply(state: SimulatorState, request: Request, seq: int, model: str, system: list[dict[str, Any]],
           messages: list[dict[str, Any]], max_tokens: int | None, tools: list[tuple[str, Any]],
           forced_tool: str | None, reasoning: bool) -> _Reply:
    config = state.config
    forced = request.headers.get(OUTPUT_TOKENS_HEADER)
    if forced is not None and not forced.strip().isdigit():
        raise InvalidRequest(f"{OUTPUT_TOKENS_HEADER} must be a non-negative integer, got {forced!r}")
    digest = request_digest(model, system, messages, [t[0] for t in tools])
    last = messages[-1]["content"] if messages else []
    answered = isinstance(last, list) and any(b.get("tool_result") for b in last if isinstance(b, dict))
    tool = None
    budget = max_tokens
    if tools and not answered and messages and messages[-1].get("role") == "user":
        name, schema = next(((n, s) for n, s in tools if n == forced_tool), tools[0])
        tool = (f"tooluse_sim{seq:012d}", name, _tool_input(schema, digest))
        tool_tokens = count_tokens(orjson.dumps(tool[2]).decode())
        if max_tokens is not None and max_tokens - tool_tokens < 1:
            tool = None
        elif max_tokens is not None:
            budget = max_tokens - tool_tokens
    answer = plan_answer(digest, model, max_tokens=budget, forced_tokens=int(forced) if forced else None,
                         min_tokens=config.min_output_tokens, max_default_tokens=config.max_output_tokens,
                         reasoning=reasoning)
    thoughts = plan_answer(digest[::-1], model, max_tokens=None, forced_tokens=answer.reasoning_tokens,
                           min_tokens=1, max_default_tokens=1, reasoning=False).pieces if reasoning else ()
    anthropic_system: object = system or None
    prompt = state.cache.anthropic_usage(model, anthropic_system, messages)
    ttls = [b["cache_control"].get("ttl", "5m") for m in [{"content": system}, *messages]
            for b in (m["content"] if isinstance(m["content"], list) else []) if b.get("cache_control")]
    return _Reply(answer, prompt, tool, thoughts, ttls[-1] if ttls else "5m")


def _usage(reply: _Reply) -> dict[str, Any]:
    prompt = reply.prompt
    usage: dict[str, Any] = {
        "inputTokens": prompt.input_tokens, "outputTokens": reply.output_tokens,
        "totalTokens": prompt.total_input_tokens + reply.output_tokens,
        "cacheReadInputTokens": prompt.cache_read_input_tokens,
        "cacheWriteInputTokens": prompt.cache_creation_input_tokens}
    if prompt.cache_creation_input_tokens:
        usage["cacheDetails"] = [{"ttl": reply.cache_ttl, "inputTokens": prompt.cache_creation_input_tokens}]
    return usage


def _converse_turn(state: SimulatorState, request: Request, seq: int, model: str,
                   body: Mapping[str, Any]) -> _Reply:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("messages: at least one message is required")
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{index}.role: must be 'user' or 'assistant'")
        messages.append({"role": message["role"], "content": _blocks(message.get("content"),
                                                                     f"messages.{index}.content")})
    system = _blocks(body.get("system") or [], "system")
    config = body.get("inferenceConfig") or {}
    max_tokens = config.get("maxTokens") if isinstance(config, dict) else None
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise InvalidRequest("inferenceConfig.maxTokens: must be an integer of at least 1")
    tool_config = body.get("toolConfig") or {}
    tools = [(t["toolSpec"].get("name", "tool"), (t["toolSpec"].get("inputSchema") or {}).get("json"))
             for t in tool_config.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("toolSpec"), dict)]
    choice = tool_config.get("toolChoice") or {}
    forced = (choice.get("tool") or {}).get("name") if isinstance(choice, dict) else None
    extra = body.get("additionalModelRequestFields") or {}
    thinking = extra.get("thinking") if isinstance(extra, dict) else None
    reasoning = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    return _reply(state, request, seq, model, system, messages, max_tokens, tools, forced, reasoning)


def _converse(state: SimulatorState, request: Request, seq: int, model: str, body: Mapping[str, Any],
              cut: bool, stream: bool) -> Response:
    reply = _converse_turn(state, request, seq, model, body)
    headers = {"x-amzn-requestid": f"00000000-0000-4000-8000-{seq:012d}"}
    if stream:
        return _converse_stream(state, reply, cut, headers)
    content: list[dict[str, Any]] = []
    if reply.reasoning:
        content.append({"reasoningContent": {"reasoningText": {"text": "".join(reply.reasoning),
                                                               "signature": "sim-signature"}}})
    content.append({"text": reply.answer.text})
    if reply.tool:
        content.append({"toolUse": {"toolUseId": reply.tool[0], "name": reply.tool[1], "input": reply.tool[2]}})
    payload = {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": reply.stop_reason,
               "usage": _usage(reply), "metrics": {"latencyMs": 42}}
    if cut:
        return CutResponse(orjson.dumps(payload))
    return Response(orjson.dumps(payload), headers=headers, media_type="application/json")


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return encode_event(kind, {**payload, "p": _PAD[: 4 + len(kind)]})


def _stream_response(state: SimulatorState, frames: list[bytes], content: int, cut: bool,
                     headers: dict[str, str]) -> Response:
    """`content` frames after the first are paced tokens; a cut drops the connection half-way through them."""
    paced = [False] + [True] * content + [False] * (len(frames) - 1 - content)
    return EventStreamResponse(frames, paced, delay_s=state.config.stream_delay_ms / 1000.0,
                               cut_after=1 + content // 2 if cut else None,
                               headers={**headers, "content-type": EVENT_STREAM})


def _converse_stream(state: SimulatorState, reply: _Reply, cut: bool, headers: dict[str, str]) -> Response:
    frames = [_event("messageStart", {"role": "assistant"})]
    index = 0
    if reply.reasoning:
        frames += [_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": p}}})
                   for p in reply.reasoning]
        frames.append(_event("contentBlockDelta", {"contentBlockIndex": 0,
                                                   "delta": {"reasoningContent": {"signature": "sim-signature"}}}))
        frames.append(_event("contentBlockStop", {"contentBlockIndex": 0}))
        index = 1
    frames += [_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": p}})
               for p in reply.answer.pieces]
    frames.append(_event("contentBlockStop", {"contentBlockIndex": index}))
    if reply.tool:
        tool_id, name, arguments = reply.tool
        text = orjson.dumps(arguments).decode()
        frames.append(_event("contentBlockStart", {"contentBlockIndex": index + 1,
                                                   "start": {"toolUse": {"toolUseId": tool_id, "name": name}}}))
        frames += [_event("contentBlockDelta", {"contentBlockIndex": index + 1,
                                                "delta": {"toolUse": {"input": text[i:i + 16]}}})
                   for i in range(0, len(text), 16)]
        frames.append(_event("contentBlockStop", {"contentBlockIndex": index + 1}))
    content = len(frames) - 1
    frames.append(_event("messageStop", {"stopReason": reply.stop_reason}))
    frames.append(_event("metadata", {"usage": _usage(reply), "metrics": {"latencyMs": 42}}))
    return _stream_response(state, frames, content, cut, headers)


def _invoke(state: SimulatorState, request: Request, seq: int, model: str, body: Mapping[str, Any],
            cut: bool, stream: bool) -> Response:
    if "anthropic." not in model and not model.startswith("arn:"):
        raise InvalidRequest(f"The simulator serves InvokeModel for Anthropic models only, not {model!r}; "
                             "use Converse")
    if body.get("anthropic_version") != "bedrock-2023-05-31":
        raise InvalidRequest("anthropic_version: must be 'bedrock-2023-05-31'")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest("max_tokens: an integer of at least 1 is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest("messages: at least one message is required")
    msgs = [{**m, "content": [{**b, "tool_result": b.get("type") == "tool_result"} if isinstance(b, dict) else b
                              for b in m["content"]] if isinstance(m.get("content"), list) else m.get("content")}
            for m in messages]
    system = body.get("system")
    system_blocks = ([{"type": "text", "text": system}] if isinstance(system, str) and system
                     else system if isinstance(system, list) else [])
    tools = [(t.get("name", "tool"), t.get("input_schema")) for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice") or {}
    forced = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "tool" else None
    reply = _reply(state, request, seq, model, system_blocks, msgs, max_tokens, tools, forced, reasoning=False)
    prompt = reply.prompt
    usage = {"input_tokens": prompt.input_tokens, "cache_creation_input_tokens": prompt.cache_creation_input_tokens,
             "cache_read_input_tokens": prompt.cache_read_input_tokens, "output_tokens": reply.output_tokens}
    message_id = f"msg_bdrk_sim{seq:014d}"
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.answer.text}]
    if reply.tool:
        content.append({"type": "tool_use", "id": reply.tool[0], "name": reply.tool[1], "input": reply.tool[2]})
    headers = {"x-amzn-requestid": f"00000000-0000-4000-8000-{seq:012d}",
               "x-amzn-bedrock-input-token-count": str(prompt.total_input_tokens),
               "x-amzn-bedrock-output-token-count": str(reply.output_tokens)}
    if not stream:
        payload = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
                   "stop_reason": reply.stop_reason, "stop_sequence": None, "usage": usage}
        if cut:
            return CutResponse(orjson.dumps(payload))
        return Response(orjson.dumps(payload), headers=headers, media_type="application/json")
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": message_id, "type": "message", "role": "assistant",
                                              "model": model, "content": [], "stop_reason": None,
                                              "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
               for p in reply.answer.pieces]
    events.append({"type": "content_block_stop", "index": 0})
    if reply.tool:
        events.append({"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": reply.tool[0], "name": reply.tool[1], "input": {}}})
        events.append({"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": orjson.dumps(reply.tool[2]).decode()}})
        events.append({"type": "content_block_stop", "index": 1})
    content_count = len(events) - 1
    events.append({"type": "message_delta", "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                   "usage": {"output_tokens": reply.output_tokens}})
    events.append({"type": "message_stop", "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": prompt.total_input_tokens, "outputTokenCount": reply.output_tokens,
        "invocationLatency": 42, "firstByteLatency": 7}})
    frames = [_event("chunk", {"bytes": base64.b64encode(orjson.dumps(e)).decode()}) for e in events]
    return _stream_response(state, frames, content_count, cut, headers)


_Handler = Callable[[SimulatorState, Request, int, str, Mapping[str, Any], bool, bool], Response]


def _endpoint(state: SimulatorState, auth: BedrockAuth, handler: _Handler,
              stream: bool) -> Callable[[Request], Awaitable[Response]]:
    latency_s = state.config.latency_ms / 1000.0

    async def run(request: Request) -> Response:
        seq = state.next_request(request.scope["path"])
        raw = await request.body()
        try:
            _authenticate(request, raw, auth)
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                raise InvalidRequest("The request body must be a JSON object.")
            fault = requested_fault(request.headers) or state.draw_fault()
            if state.config.record_requests:
                state.record({"seq": seq, "method": request.method, "path": request.scope["path"], "fault": fault,
                              "headers": {k: ("***" if k == "authorization" else v)
                                          for k, v in request.headers.items()}, "body": body})
            if fault is not None:
                state.faults[fault] += 1
            if fault == "timeout":
                response: Response = HangResponse(state.config.timeout_hang_s,
                                                  bedrock_error(408, "Simulated model timeout."))
            elif fault is not None and fault != "cut":
                status = fault_status(fault) or 500
                response = bedrock_error(status, f"Simulated upstream fault: HTTP {status}.",
                                         headers={"retry-after": "1"} if status in (429, 503) else None)
            else:
                model = request.path_params["modelId"]
                response = handler(state, request, seq, model, body, fault == "cut", stream)
        except _Refused as exc:
            response = bedrock_error(exc.status, exc.message, exc.error_type)
        except orjson.JSONDecodeError:
            response = bedrock_error(400, "The request body is not valid JSON.")
        except InvalidRequest as exc:
            response = bedrock_error(400, exc.message)
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        return response

    return run


def routes(state: SimulatorState, auth: BedrockAuth | None = None) -> list[Route]:
    """The Bedrock Runtime routes of one simulator (accepting `auth`, the simulator credentials by default)."""
    auth = auth or BedrockAuth()
    table = (("converse", _converse, False), ("converse-stream", _converse, True),
             ("invoke", _invoke, False), ("invoke-with-response-stream", _invoke, True))
    return [Route(f"/model/{{modelId:path}}/{operation}", _endpoint(state, auth, handler, stream), methods=["POST"])
            for operation, handler, stream in table]

