"""OpenAI-compatible Responses API: `POST /v1/responses` (plain, typed SSE stream, background),
`GET` / `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`,
`POST /v1/responses/{id}/cancel`, `POST /v1/responses/compact` and `POST /v1/responses/input_tokens`.

The answer is a pure function of the request (model, instructions, the stored chain of
`previous_response_id`, input, tools), like the other endpoints:

* with function tools and no tool result after the last user message (or `tool_choice`
  `required` / a named function), the model calls the first (or named) function with arguments
  built from its JSON schema; otherwise it answers text (`answers.plan_answer`);
* a `web_search*` tool adds one `web_search_call` item, a `file_search` tool one `file_search_call`;
* reasoning models (`gpt-5…`, `o…`) report half of their output as `reasoning_tokens` and a
  `reasoning` item, unless `reasoning.effort` is `none`;
* `max_output_tokens` truncates the answer: status `incomplete` (`response.incomplete` streamed);
* `metadata.simulator_outcome: "failed"` fails the response half-way (`response.failed`).

Usage counts the prompt as the chat endpoint does (instructions as a system message, each input
item as a message, function calls and outputs by their text) plus the tokens of the tools' JSON;
a chained request counts the stored chain (earlier inputs and outputs, not earlier instructions).
Stored responses (`store` not false) live in this app's `ResponseStore`, oldest forgotten first;
`input_items` lists a stored response's own input items (a string input as one user message), each
with an id, as OpenAI's cursor page: `limit` 1–100 (default 20), `order` `desc` (default) or `asc`,
`after` an item id.
`background: true` answers `queued`; the response completes `BACKGROUND_SECONDS` later
(`metadata.simulator_background_ms` overrides), which GET then shows; cancel before that gives
`cancelled` with the prompt's usage and no output. Faults come from the shared machinery; a `cut`
stream stops after about half of the text deltas, before the final event.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from costplane.simulator.answers import is_reasoning_model, plan_answer, request_digest
from costplane.simulator.endpoint import Call, endpoint, json_response
from costplane.simulator.errors import InvalidRequest, openai_error
from costplane.simulator.faults import CutResponse
from costplane.simulator.sse import EventStreamResponse, sse_frame
from costplane.simulator.state import SimulatorState
from costplane.simulator.tokens import count_chat_prompt_tokens, count_tokens, tokenize
from costplane.simulator.usage_shapes import USAGE_HEADER, deep_merge, profile_for, served_tier

__all__ = ["BACKGROUND_SECONDS", "MIN_OUTPUT_TOKENS", "ResponseStore", "routes"]

#: how long a background response takes to complete
BACKGROUND_SECONDS = 0.2
#: OpenAI's smallest accepted `max_output_tokens`
MIN_OUTPUT_TOKENS = 16
_CAPACITY = 20_000
_TERMINAL = ("completed", "incomplete", "failed", "cancelled")


@dataclass(slots=True)
class Stored:
    final: dict[str, Any]  # the response once done
    chain: list[dict[str, Any]]  # the conversation a continuation sees (chat-shaped messages)
    ready_at: float = 0.0  # background: when it completes
    cancelled: dict[str, Any] | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)  # the request's input items, with ids


@dataclass(slots=True)
class ResponseStore:
    """Responses kept for GET, cancel, delete and `previous_response_id` (bounded)."""

    capacity: int = _CAPACITY
    items: OrderedDict[str, Stored] = field(default_factory=OrderedDict)

    def put(self, response_id: str, stored: Stored) -> None:
        self.items[response_id] = stored
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)

    def view(self, response_id: str) -> dict[str, Any] | None:
        stored = self.items.get(response_id)
        if stored is None:
            return None
        if stored.cancelled is not None:
            return stored.cancelled
        if time.time() < stored.ready_at:
            return {**stored.final, "status": "in_progress", "output": [], "usage": None,
                    "incomplete_details": None, "error": None, "completed_at": None}
        return stored.final


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# -- request → prompt messages ------------------------------------------------------------------

def _leaves(value: Any, out: list[dict[str, str]]) -> None:
    """Every string and number of an item except its `type` tags, as text parts."""
    if isinstance(value, str):
        out.append({"text": value})
    elif isinstance(value, bool | int | float):
        out.append({"text": str(value)})
    elif isinstance(value, list):
        for item in value:
            _leaves(item, out)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key != "type":
                _leaves(item, out)


def _item_message(item: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = item.get("type", "message")
    if kind == "message":
        return {"role": str(item.get("role", "user")), "content": item.get("content")}
    if kind == "function_call":
        return {"role": "assistant", "content": str(item.get("arguments", "")), "name": str(item.get("name", ""))}
    if kind == "function_call_output":
        output = item.get("output")
        return {"role": "tool", "content": output if isinstance(output, str | list) else ""}
    if kind == "reasoning":
        return {"role": "assistant", "content": item.get("summary") or ""}
    if kind == "item_reference":
        return None
    parts: list[dict[str, str]] = []
    _leaves({k: v for k, v in item.items() if k not in ("id", "status")}, parts)
    return {"role": "user", "content": parts}


def _input_items(rid: str, value: Any) -> list[dict[str, Any]]:
    """The request's input as stored items (what `input_items` lists): a string is one user message;
    a message's string content becomes one `input_text` part; an item without an id gets one."""
    raw: list[Any] = [{"type": "message", "role": "user", "content": value}] if isinstance(value, str) else (
        value if isinstance(value, list) else [])
    out: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            continue
        entry = dict(item)
        entry.setdefault("type", "message")
        if entry["type"] == "message":
            content = entry.get("content")
            if isinstance(content, str):
                kind = "output_text" if entry.get("role") == "assistant" else "input_text"
                entry["content"] = [{"type": kind, "text": content}]
            entry.setdefault("status", "completed")
        entry.setdefault("id", f"msg_{rid.removeprefix('resp_')}{index:04d}")
        out.append(entry)
    return out


def _page(items: list[dict[str, Any]], query: Mapping[str, str]) -> Response:
    """A cursor page of `items` (OpenAI's `list` object), or a 400 naming the bad parameter."""
    limit_text = query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        return openai_error(400, f"Invalid 'limit': integer between 1 and 100 expected, got {limit_text!r}.",
                            type_="invalid_request_error", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        return openai_error(400, f"Invalid 'order': 'asc' or 'desc' expected, got {order!r}.",
                            type_="invalid_request_error", param="order")
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after")
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            return openai_error(400, f"Invalid 'after': no input item with id {after!r}.",
                                type_="invalid_request_error", param="after")
        ordered = ordered[ids.index(after) + 1:]
    data = ordered[:int(limit_text)]
    return json_response({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                          "last_id": data[-1]["id"] if data else None, "has_more": len(ordered) > len(data)})


def _input_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = body.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequest("Invalid type for 'input': expected one of a string or array of input items.",
                             param="input", code="invalid_type")
    out: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid type for 'input[{index}]': expected an object.", param=f"input[{index}]",
                                 code="invalid_type")
        message = _item_message(item)
        if message is not None:
            out.append(message)
    return out


def _max_output(body: Mapping[str, Any]) -> int | None:
    value = body.get("max_output_tokens")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < MIN_OUTPUT_TOKENS:
        raise InvalidRequest(f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                             f"{MIN_OUTPUT_TOKENS}, but got {value!r} instead.", param="max_output_tokens",
                             code="integer_below_min_value")
    return value


# -- the answer ---------------------------------------------------------------------------------

def _function_to_call(body: Mapping[str, Any], messages: list[dict[str, Any]]) -> Mapping[str, Any] | None:
    tools = [t for t in body.get("tools") or () if isinstance(t, Mapping) and t.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return next((t for t in tools if t.get("name") == choice.get("name")), tools[0])
    if choice == "required":
        return tools[0]
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    answered = any(m["role"] == "tool" for m in messages[last_user + 1:])
    return None if answered else tools[0]


def _arguments(tool: Mapping[str, Any], digest: bytes) -> str:
    """Arguments matching the tool's JSON schema: a word per string, a small number per number."""
    schema = tool.get("parameters")
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    words = ("alpha", "ledger", "budget", "paris", "report", "signal", "window", "plan")
    out: dict[str, Any] = {}
    for index, (name, spec) in enumerate((props or {}).items()):
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        seed = digest[index % len(digest)]
        if kind in ("integer", "number"):
            out[name] = seed % 10 + 1
        elif kind == "boolean":
            out[name] = bool(seed % 2)
        elif kind == "array":
            out[name] = []
        elif kind == "object":
            out[name] = {}
        else:
            out[name] = words[seed % len(words)]
    return orjson.dumps(out).decode()


def _builtin_items(body: Mapping[str, Any], seq: int, query: str) -> list[dict[str, Any]]:
    kinds = {str(t.get("type", "")) for t in body.get("tools") or () if isinstance(t, Mapping)}
    items: list[dict[str, Any]] = []
    if any(k.startswith("web_search") for k in kinds):
        items.append({"type": "web_search_call", "id": f"ws_sim{seq:010d}", "status": "completed",
                      "action": {"type": "search", "query": query}})
    if "file_search" in kinds:
        items.append({"type": "file_search_call", "id": f"fs_sim{seq:010d}", "status": "completed",
                      "queries": [query], "results": None})
    return items


@dataclass(slots=True)
class Plan:
    status: str
    output: list[dict[str, Any]]
    output_tokens: int
    reasoning_tokens: int
    chain_out: list[dict[str, Any]]  # the output as messages a continuation sees
    incomplete: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def _plan(call: Call, body: Mapping[str, Any], model: str, messages: list[dict[str, Any]], digest: bytes) -> Plan:
    seq, config = call.seq, call.state.config
    effort = _obj(body.get("reasoning")).get("effort")
    reasoning = is_reasoning_model(model) and effort != "none"
    query = " ".join(tokenize(next((str(m["content"]) for m in reversed(messages) if m["role"] == "user"), ""))[:6])
    output = _builtin_items(body, seq, query.strip() or "query")
    tool = _function_to_call(body, messages)
    cap = _max_output(body)
    if tool is not None:
        name = str(tool.get("name"))
        arguments = _arguments(tool, digest)
        visible = count_tokens(name) + count_tokens(arguments)
        thinking = visible if reasoning else 0
        if cap is None or visible + thinking <= cap:
            if reasoning:
                output.append({"type": "reasoning", "id": f"rs_sim{seq:010d}", "summary": []})
            output.append({"type": "function_call", "id": f"fc_sim{seq:010d}", "call_id": f"call_sim{seq:010d}",
                           "name": name, "arguments": arguments, "status": "completed"})
            return Plan("completed", output, visible + thinking, thinking,
                        [{"role": "assistant", "content": arguments, "name": name}])
    answer = plan_answer(digest, model, max_tokens=cap, forced_tokens=call.forced_output_tokens(),
                         min_tokens=config.min_output_tokens, max_default_tokens=config.max_output_tokens,
                         reasoning=reasoning)
    failed = _obj(body.get("metadata")).get("simulator_outcome") == "failed"
    pieces = answer.pieces[: len(answer.pieces) // 2] if failed else answer.pieces
    text = "".join(pieces)
    if answer.reasoning_tokens:
        output.append({"type": "reasoning", "id": f"rs_sim{seq:010d}", "summary": []})
    status = "failed" if failed else "incomplete" if answer.truncated else "completed"
    output.append({"type": "message", "id": f"msg_sim{seq:010d}", "status": "completed" if status == "completed"
                   else "incomplete", "role": "assistant",
                   "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
    tokens = answer.reasoning_tokens + len(pieces)
    return Plan(status, output, tokens, answer.reasoning_tokens, [{"role": "assistant", "content": text}],
                incomplete={"reason": "max_output_tokens"} if status == "incomplete" else None,
                error={"code": "server_error", "message": "Simulated model failure."} if failed else None)


def _usage(prompt: int, cached: int, plan: Plan) -> dict[str, Any]:
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": plan.output_tokens, "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
            "total_tokens": prompt + plan.output_tokens}


def _envelope(body: Mapping[str, Any], rid: str, created: int, model: str, tier: str) -> dict[str, Any]:
    reasoning = _obj(body.get("reasoning"))
    return {
        "id": rid, "object": "response", "created_at": created, "status": "in_progress",
        "background": bool(body.get("background")), "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"), "model": model, "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": tier, "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "truncation": body.get("truncation",
                                                                                                  "disabled"),
        "usage": None, "user": body.get("user"), "metadata": body.get("metadata") or {}, "completed_at": None,
    }


@dataclass(slots=True)
class Prompt:
    model: str
    chain: list[dict[str, Any]]  # the stored conversation continued
    new: list[dict[str, Any]]  # this request's input items as messages
    messages: list[dict[str, Any]]  # everything the model reads, instructions first
    tokens: int


def _prompt(store: ResponseStore, body: Mapping[str, Any]) -> Prompt:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    chain: list[dict[str, Any]] = []
    previous = body.get("previous_response_id")
    if previous is not None:
        stored = store.items.get(previous) if isinstance(previous, str) else None
        if stored is None:
            raise InvalidRequest(f"Previous response with id '{previous}' not found.", param="previous_response_id",
                                 code="previous_response_not_found")
        chain = list(stored.chain)
    new = _input_messages(body)
    if not new and previous is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    instructions = body.get("instructions")
    head = [{"role": "system", "content": instructions}] if isinstance(instructions, str) and instructions else []
    messages = head + chain + new
    tools = body.get("tools")
    tokens = count_chat_prompt_tokens(messages) + (count_tokens(orjson.dumps(tools).decode()) if tools else 0)
    return Prompt(model, chain, new, messages, tokens)


def _create(store: ResponseStore, call: Call) -> Response:
    body = call.body
    asked = _prompt(store, body)
    model, chain, new, messages, prompt = asked.model, asked.chain, asked.new, asked.messages, asked.tokens
    instructions = body.get("instructions")
    tools = body.get("tools")
    cached = call.state.cache.openai_cached_tokens(model, messages, prompt)
    digest = request_digest(model, instructions, chain, body.get("input"), [
        t.get("name") or t.get("type") for t in tools or () if isinstance(t, Mapping)])
    plan = _plan(call, body, model, messages, digest)
    profile = profile_for(call.state.config.usage_profiles, model, call.request.headers.get(USAGE_HEADER))
    usage = deep_merge(_usage(prompt, cached, plan), profile.get("usage") or {})
    rid = f"resp_sim{call.seq:010d}"
    base = _envelope(body, rid, call.created, model, served_tier(body, profile))
    final = {**base, "status": plan.status, "output": plan.output, "usage": usage, "error": plan.error,
             "incomplete_details": plan.incomplete, "completed_at": call.created}
    headers = {"x-request-id": call.request_id(), "openai-model": model}
    background = body.get("background") is True
    if body.get("store") is not False:
        delay = _obj(body.get("metadata")).get("simulator_background_ms")
        wait = int(delay) / 1000.0 if isinstance(delay, str) and delay.isdigit() else BACKGROUND_SECONDS
        store.put(rid, Stored(final, chain + new + plan.chain_out, time.time() + wait if background else 0.0,
                              inputs=_input_items(rid, body.get("input"))))
    elif background:
        raise InvalidRequest("Background mode requires 'store' to be true.", param="store", code="invalid_value")
    if body.get("stream") is True:
        return _stream(call, base, final, plan, headers)
    if background:
        return json_response({**base, "status": "queued"}, headers=headers)
    if call.cut:
        return CutResponse(orjson.dumps(final))
    return json_response(final, headers=headers)


def _stream(call: Call, base: dict[str, Any], final: dict[str, Any], plan: Plan,
            headers: dict[str, str]) -> Response:
    frames: list[bytes] = []
    paced: list[bool] = []
    cut_at: list[int] = []

    def emit(kind: str, payload: dict[str, Any], token: bool = False) -> None:
        frames.append(sse_frame(orjson.dumps({"type": kind, "sequence_number": len(frames), **payload}), kind))
        paced.append(token)

    emit("response.created", {"response": base})
    emit("response.in_progress", {"response": base})
    for index, item in enumerate(plan.output):
        where = {"output_index": index, "item_id": item["id"]}
        kind = item["type"]
        if kind == "message":
            part = item["content"][0]
            emit("response.output_item.added", {"output_index": index,
                                                "item": {**item, "status": "in_progress", "content": []}})
            emit("response.content_part.added", {**where, "content_index": 0, "part": {**part, "text": ""}})
            pieces = tokenize(part["text"])
            for number, piece in enumerate(pieces):
                emit("response.output_text.delta", {**where, "content_index": 0, "delta": piece, "logprobs": []},
                     token=True)
                if number == len(pieces) // 2:
                    cut_at.append(len(frames))
            emit("response.output_text.done", {**where, "content_index": 0, "text": part["text"], "logprobs": []})
            emit("response.content_part.done", {**where, "content_index": 0, "part": part})
        elif kind == "function_call":
            emit("response.output_item.added", {"output_index": index,
                                                "item": {**item, "arguments": "", "status": "in_progress"}})
            for piece in tokenize(item["arguments"]):
                emit("response.function_call_arguments.delta", {**where, "delta": piece}, token=True)
            emit("response.function_call_arguments.done", {**where, "arguments": item["arguments"],
                                                           "name": item["name"]})
        else:
            emit("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress"}}
                 if "status" in item else {"output_index": index, "item": item})
            if kind in ("web_search_call", "file_search_call"):
                for step in ("in_progress", "searching", "completed"):
                    emit(f"response.{kind}.{step}", where)
        emit("response.output_item.done", {"output_index": index, "item": item})
    final_kind = {"failed": "response.failed", "incomplete": "response.incomplete"}.get(final["status"],
                                                                                         "response.completed")
    emit(final_kind, {"response": final})
    cut_after = (cut_at[0] if cut_at else len(frames) - 1) if call.cut else None
    return EventStreamResponse(frames, paced, delay_s=call.state.config.stream_delay_ms / 1000.0,
                               cut_after=cut_after, headers=headers)


def _compact(store: ResponseStore, call: Call) -> Response:
    """`POST /v1/responses/compact`: the conversation as one opaque compaction item; the output is
    a quarter of the prompt's tokens (at least 16, at most 2,048)."""
    asked = _prompt(store, call.body)
    output = min(max(asked.tokens // 4, 16), 2048)
    digest = request_digest(asked.model, asked.messages)
    item = {"type": "compaction", "id": f"cmp_sim{call.seq:010d}", "encrypted_content": digest.hex() * 4}
    payload = {"id": f"resp_sim{call.seq:010d}", "object": "response.compaction", "created_at": call.created,
               "output": [item], "usage": {"input_tokens": asked.tokens, "input_tokens_details": {"cached_tokens": 0},
                                           "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
                                           "total_tokens": asked.tokens + output}}
    return CutResponse(orjson.dumps(payload)) if call.cut else json_response(payload)


def _not_found(response_id: str) -> Response:
    return openai_error(404, f"Response with id '{response_id}' not found.", type_="invalid_request_error")


def routes(state: SimulatorState) -> list[Route]:
    """The Responses API routes of one simulator app (with their own response store)."""
    store = ResponseStore()

    def input_tokens(call: Call) -> Response:
        return json_response({"object": "response.input_tokens", "input_tokens": _prompt(store, call.body).tokens})

    def one(call: Call) -> Response:  # GET reads it, DELETE forgets it
        rid = call.request.path_params["response_id"]
        view = store.view(rid) if call.request.method == "GET" else store.items.pop(rid, None)
        if view is None:
            return _not_found(rid)
        return json_response(view if isinstance(view, dict) else {"id": rid, "object": "response", "deleted": True})

    def input_items(call: Call) -> Response:
        rid = call.request.path_params["response_id"]
        stored = store.items.get(rid)
        if stored is None:
            return _not_found(rid)
        return _page(stored.inputs, call.request.query_params)

    async def cancel(request: Request) -> Response:  # the SDK sends no body: not an `endpoint`
        state.next_request(request.scope["path"])
        rid = request.path_params["response_id"]
        stored = store.items.get(rid)
        if stored is None:
            return _not_found(rid)
        if not stored.final.get("background"):
            return openai_error(400, "Only responses created with background=true can be cancelled.")
        view = store.view(rid)
        if view is not None and view["status"] in _TERMINAL:
            return json_response(view)
        usage = dict(stored.final["usage"] or {})
        usage.update(output_tokens=0, output_tokens_details={"reasoning_tokens": 0},
                     total_tokens=usage.get("input_tokens", 0))
        stored.cancelled = {**stored.final, "status": "cancelled", "output": [], "usage": usage,
                            "incomplete_details": None, "error": None}
        return json_response(stored.cancelled)

    return [
        Route("/v1/responses", endpoint(state, "openai", partial(_create, store)), methods=["POST"]),
        Route("/v1/responses/compact", endpoint(state, "openai", partial(_compact, store)), methods=["POST"]),
        Route("/v1/responses/input_tokens", endpoint(state, "openai", input_tokens, draws_faults=False),
              methods=["POST"]),
        Route("/v1/responses/{response_id}", endpoint(state, "openai", one, draws_faults=False),
              methods=["GET", "DELETE"]),
        Route("/v1/responses/{response_id}/input_items", endpoint(state, "openai", input_items, draws_faults=False),
              methods=["GET"]),
        Route("/v1/responses/{response_id}/cancel", cancel, methods=["POST"]),
    ]
