"""Property-based tests of the gateway's input handling, against the real app and a real upstream.

Well-formed bodies are drawn from each protocol's documented schema (OpenAI chat and embeddings,
Anthropic messages): they must be served (2xx) and metered. Mutations of them (any value at any
field, removed fields, deep nesting, huge numbers, unicode), arbitrary JSON, non-JSON bytes, wrong
content types and arbitrary attribution headers must never get a 5xx; every 4xx is in the
protocol's own error shape, a 400 names the field it refuses, and nothing refused is written. A
hard budget is never overspent. Hypothesis runs derandomized without a database, so CI sees the
same examples every time.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.app import create_gateway
from costplane.gateway.keys import create_key
from costplane.money import parse_usd
from costplane.serving import BackgroundServer
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

from .conftest import DEFAULT_BUNDLE, gateway_config, write_bundle

CAP = "0.003 USD"  # small enough that the capped team runs out within the examples
BUNDLE = DEFAULT_BUNDLE + f"""
---
kind: Budget
name: capped-team
scope: ctx.team == "capped"
amount: {CAP}
enforcement: hard
"""

PROPERTY = settings(max_examples=45, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
CHAT, EMBED, MESSAGES = "/v1/chat/completions", "/v1/embeddings", "/v1/messages"
AZURE = "/openai/deployments/prod-mini/chat/completions?api-version=2024-10-21"  # the model is in the path


@dataclass
class Gateway:
    url: str
    app: Application
    http: httpx.Client
    keys: dict[str, str]

    def post(self, path: str, content: bytes, headers: dict[str, Any]) -> httpx.Response:
        return self.http.post(self.url + path, content=content, headers=headers)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("properties")
    with BackgroundServer(create_app(SimulatorConfig())) as simulator:
        data = gateway_config(simulator.url, f"sqlite:///{root}/g.db", write_bundle(root, BUNDLE),
                              max_request_bytes=200_000)
        app = Application(parse_config(data, base=root))
        try:
            with BackgroundServer(create_gateway(app)) as server, httpx.Client(timeout=30) as http:
                keys = {team: create_key(app.store, team, {"team": team})[0] for team in ("main", "capped")}
                yield Gateway(server.url, app, http, keys)
        finally:
            app.close()


# -- well-formed bodies, from the documented schemas ----------------------------------------------

TEXT = st.text(min_size=1, max_size=40)
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _LOWER + _LOWER.upper() + "0123456789"
NAME = st.builds(str.__add__, st.sampled_from(_LOWER), st.text(_LOWER + "0123456789_", max_size=15))
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
ANY_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
JSON_SCHEMA = st.fixed_dictionaries({"type": st.just("object")}, optional={
    "properties": st.dictionaries(NAME, st.fixed_dictionaries({"type": st.sampled_from(["string", "integer"])}),
                                  max_size=3)})


def optional(**fields: st.SearchStrategy[Any]) -> dict[str, st.SearchStrategy[Any]]:
    return fields


def openai_parts() -> st.SearchStrategy[Any]:
    text = st.fixed_dictionaries({"type": st.just("text"), "text": TEXT})
    url = st.fixed_dictionaries({"url": st.just("https://example.com/cat.png")},
                                optional={"detail": st.sampled_from(["auto", "low", "high"])})
    image = st.fixed_dictionaries({"type": st.just("image_url"), "image_url": url})
    return st.lists(text | image, min_size=1, max_size=3)


def openai_message() -> st.SearchStrategy[dict[str, Any]]:
    text_parts = st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}), min_size=1, max_size=2)
    tool_call = st.fixed_dictionaries({"id": NAME, "type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": NAME, "arguments": st.just("{}")})})
    return st.one_of(
        st.fixed_dictionaries({"role": st.sampled_from(["system", "developer"]), "content": TEXT | text_parts},
                              optional={"name": NAME}),
        st.fixed_dictionaries({"role": st.just("user"), "content": TEXT | openai_parts()}, optional={"name": NAME}),
        st.fixed_dictionaries({"role": st.just("assistant")}, optional={
            "content": st.none() | TEXT | text_parts, "tool_calls": st.lists(tool_call, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"role": st.just("tool"), "content": TEXT, "tool_call_id": NAME}),
    )


def openai_chat_body() -> st.SearchStrategy[dict[str, Any]]:
    tool = st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": NAME}, optional={"description": TEXT, "parameters": JSON_SCHEMA, "strict": st.booleans()})})
    return st.fixed_dictionaries({
        "model": st.sampled_from(["gpt-4o-mini", "gpt-4o"]),
        "messages": st.lists(openai_message(), min_size=1, max_size=4),
    }, optional=optional(
        max_tokens=st.integers(1, 64), temperature=st.floats(0, 2) | st.none(), top_p=st.floats(0, 1),
        n=st.just(1), stop=TEXT | st.lists(TEXT, max_size=4) | st.none(), seed=st.integers(-(2**63), 2**63 - 1),
        presence_penalty=st.floats(-2, 2), frequency_penalty=st.floats(-2, 2), user=TEXT,
        logit_bias=st.dictionaries(st.integers(0, 50_000).map(str), st.integers(-100, 100), max_size=2),
        metadata=st.dictionaries(NAME, TEXT, max_size=3), store=st.booleans(), logprobs=st.booleans(),
        top_logprobs=st.integers(0, 20), parallel_tool_calls=st.booleans(),
        tools=st.lists(tool, min_size=1, max_size=2), tool_choice=st.sampled_from(["none", "auto", "required"]),
        response_format=st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
        x_future_parameter=ANY_JSON,  # unknown top-level parameters are forwarded
    ))


_STREAMED = st.fixed_dictionaries({"stream": st.just(True)}, optional={
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()})})
_PLAIN = st.fixed_dictionaries({}, optional={"stream": st.sampled_from([False, None])})


@st.composite
def _with_stream(draw: st.DrawFn, bodies: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    body = draw(bodies)
    body.update(draw(_STREAMED | _PLAIN))
    return body


def embeddings_body() -> st.SearchStrategy[dict[str, Any]]:
    tokens = st.lists(st.integers(0, 100_000), min_size=1, max_size=8)
    return st.fixed_dictionaries({
        "model": st.sampled_from(["text-embedding-3-small", "text-embedding-3-large"]),
        "input": TEXT | st.lists(TEXT, min_size=1, max_size=4) | tokens | st.lists(tokens, min_size=1, max_size=3),
    }, optional=optional(dimensions=st.integers(1, 256), encoding_format=st.sampled_from(["float", "base64"]),
                         user=TEXT))


def anthropic_body() -> st.SearchStrategy[dict[str, Any]]:
    text = st.fixed_dictionaries({"type": st.just("text"), "text": TEXT})
    image = st.fixed_dictionaries({"type": st.just("image"), "source": st.fixed_dictionaries(
        {"type": st.just("base64"), "media_type": st.just("image/png"), "data": st.just("iVBORw0KGgo=")})})
    tool_use = st.fixed_dictionaries({"type": st.just("tool_use"), "id": NAME, "name": NAME,
                                      "input": st.dictionaries(NAME, TEXT, max_size=2)})
    tool_result = st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": NAME},
                                        optional={"content": TEXT | st.lists(text, max_size=2),
                                                  "is_error": st.booleans()})
    message = st.one_of(
        st.fixed_dictionaries({"role": st.just("user"),
                               "content": TEXT | st.lists(text | image | tool_result, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"role": st.just("assistant"),
                               "content": TEXT | st.lists(text | tool_use, min_size=1, max_size=2)}),
    )
    tool = st.fixed_dictionaries({"name": NAME, "input_schema": JSON_SCHEMA}, optional={"description": TEXT})
    return st.fixed_dictionaries({
        "model": st.just("claude-haiku-4-5"),
        "max_tokens": st.integers(1, 64),
        "messages": st.lists(message, min_size=1, max_size=4),
    }, optional=optional(
        system=TEXT | st.lists(text, min_size=1, max_size=2), temperature=st.floats(0, 1), top_p=st.floats(0, 1),
        top_k=st.integers(0, 500), stop_sequences=st.lists(TEXT, max_size=3), stream=st.booleans(),
        metadata=st.fixed_dictionaries({}, optional={"user_id": NAME}), tools=st.lists(tool, min_size=1, max_size=2),
        tool_choice=st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}]),
        x_future_parameter=ANY_JSON,
    ))


PROTOCOLS = {CHAT: ("openai", _with_stream(openai_chat_body())), EMBED: ("openai", embeddings_body()),
             MESSAGES: ("anthropic", anthropic_body()), AZURE: ("openai", _with_stream(openai_chat_body()))}

# -- attribution headers ------------------------------------------------------------------------------

HEX = "0123456789abcdef"
TRACEPARENT = st.builds(lambda v, t, p, f: f"{v}-{t}-{p}-{f}", st.sampled_from(["00", "01", "fe"]),
                        st.text(HEX, min_size=32, max_size=32).filter(lambda t: t.strip("0")),
                        st.text(HEX, min_size=16, max_size=16).filter(lambda p: p.strip("0")),
                        st.text(HEX, min_size=2, max_size=2))
VALUE = st.builds(str.__add__, st.sampled_from(_ALNUM), st.text(_ALNUM + "._:/@+=-", max_size=20))
GOOD_HEADERS = st.fixed_dictionaries({}, optional={
    "traceparent": TRACEPARENT,
    "x-costplane-project": VALUE,
    "x-costplane-tag-feature": VALUE,
    "baggage": st.lists(st.tuples(st.sampled_from(["costplane.experiment", "costplane.tag.feature", "vendor.x"]),
                                  VALUE), min_size=1, max_size=3, unique_by=lambda kv: kv[0]).map(
        lambda kvs: ",".join(f"{k}={quote(v, safe='')}" for k, v in kvs)),
})
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=["Cc"]),
                      max_size=60).map(str.strip)  # HTTP itself trims surrounding whitespace
ANY_HEADERS = st.dictionaries(
    st.sampled_from(["traceparent", "baggage", "x-costplane-team", "x-costplane-run", "x-costplane-tag-x",
                     "x-costplane-cache", "x-costplane-unknown", "content-type"]),
    HEADER_TEXT | TRACEPARENT, max_size=3)

# -- invariants ------------------------------------------------------------------------------------

_FIELD_FREE_CODES = {"invalid_api_key"}


def check(gw: Gateway, response: httpx.Response, proto: str, events_before: int) -> None:
    """What must hold for any input: no 5xx, the protocol's error shape, fields named, 2xx metered."""
    status = response.status_code
    assert status < 500, (status, response.text[:500])
    events = gw.app.store.count_events()
    if status < 400:
        assert events == events_before + 1, "a served call must be metered exactly once"
        assert response.headers.get("x-costplane-decision-id")
        return
    assert events == events_before, "a refused call must not be metered"
    body = response.json()
    if proto == "anthropic":
        assert body["type"] == "error" and set(body) == {"type", "error"}, body
        error = body["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str) and error["message"]
    else:
        assert set(body) == {"error"}, body
        error = body["error"]
        assert {"message", "type", "param", "code"} <= set(error), error
        assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str)
    if status in (400, 413, 415) and response.headers.get("x-costplane-error-code") not in _FIELD_FREE_CODES:
        header = response.headers.get("x-costplane-error-param")
        assert header, f"a {status} must name the field it refuses: {body}"
        param = header.encode("ascii").decode("unicode_escape")  # the header is escaped to ASCII
        assert param in error["message"], (param, body)
        if proto == "openai":
            assert error["param"][:512] == param
    assert gw.app.store.open_reservations() == 0


def check_budget(gw: Gateway, response: httpx.Response) -> None:
    remaining = response.headers.get("x-costplane-budget-remaining-usd")
    if remaining is not None:
        assert Decimal(remaining) >= 0, remaining
    spent = sum(row.cost_nano for row in gw.app.store.spend(group_by=["team"]) if row.group.get("team") == "capped")
    assert 0 <= spent <= parse_usd(CAP)


def send(gw: Gateway, path: str, body: bytes, *, team: str = "main", content_type: str | None = "application/json",
         headers: dict[str, Any] | None = None) -> tuple[httpx.Response, int]:
    before = gw.app.store.count_events()
    send_headers: dict[str, Any] = {"authorization": f"Bearer {gw.keys[team]}"}
    if content_type is not None:
        send_headers["content-type"] = content_type
    send_headers.update(headers or {})
    response = gw.post(path, body, send_headers)
    response.read()
    return response, before


def dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


# -- well-formed: served and metered ------------------------------------------------------------------


@pytest.mark.parametrize("path", [CHAT, EMBED, MESSAGES])
def test_well_formed_bodies_are_served_and_metered(gateway: Gateway, path: str) -> None:
    proto, bodies = PROTOCOLS[path]

    @PROPERTY
    @given(body=bodies, headers=GOOD_HEADERS, team=st.sampled_from(["main", "main", "capped"]))
    def run(body: dict[str, Any], headers: dict[str, str], team: str) -> None:
        response, before = send(gateway, path, dump(body), team=team, headers=headers)
        if team == "capped" and response.status_code == 402:
            check(gateway, response, proto, before)  # the budget had no room: refused, in shape
        else:
            assert 200 <= response.status_code < 300, (response.status_code, response.text[:500], body)
            check(gateway, response, proto, before)
            if body.get("stream") is True:
                assert response.headers["content-type"].startswith("text/event-stream")
            else:
                assert response.headers["content-type"].startswith("application/json")
        check_budget(gateway, response)

    run()


def test_the_hard_budget_is_reached_and_never_overspent(gateway: Gateway) -> None:
    statuses: list[int] = []

    @PROPERTY
    @given(body=PROTOCOLS[CHAT][1], model=st.sampled_from(["gpt-4o", "gpt-4o-mini"]))
    def run(body: dict[str, Any], model: str) -> None:
        response, before = send(gateway, CHAT, dump({**body, "model": model}), team="capped")
        assert response.status_code in (200, 402), response.text[:300]
        check(gateway, response, "openai", before)
        check_budget(gateway, response)
        statuses.append(response.status_code)

    run()
    assert 402 in statuses, "the examples should exhaust the capped budget"
    assert "capped-team" in gateway.http.post(gateway.url + CHAT, content=dump(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 5000}], "max_tokens": 4000}),
        headers={"authorization": f"Bearer {gateway.keys['capped']}", "content-type": "application/json"}).text


# -- anything else: never a 5xx, always the documented shape -------------------------------------


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, element in value.items():
            out += _paths(element, (*prefix, key))
    elif isinstance(value, list):
        for index, element in enumerate(value):
            out += _paths(element, (*prefix, index))
    return out


_DEEP = "\x00deep\x00"
WRONG = st.sampled_from(["yes", "", 1, 0, -1, [True], {}, [], None, True, False, 2**80, -(2**64), 1e300, -1e-300,
                         "\u202e\U0001f600", "0", "true", [[]], {"type": "bogus"}])


@st.composite
def mutated(draw: st.DrawFn, bodies: st.SearchStrategy[dict[str, Any]]) -> tuple[bytes, str]:
    """A well-formed body with one field replaced, removed or nested deep; as bytes, and a label."""
    body = copy.deepcopy(draw(bodies))  # strategies may share constant objects: never mutate them
    path = draw(st.sampled_from(_paths(body)))
    kind = draw(st.sampled_from(["replace", "wrong", "delete", "deep", "insert"]))
    parent: Any = None
    target: Any = body
    for step in path:
        parent, target = target, target[step]
    if kind == "delete" and parent is not None:
        del parent[path[-1]]
    elif kind == "insert" and isinstance(target, dict):
        target[draw(st.sampled_from(["type", "role", "content", "text", "stream", "x"]))] = draw(ANY_JSON | WRONG)
    elif kind == "deep":
        replacement: Any = _DEEP
        depth = draw(st.sampled_from([40, 63, 64, 65, 100, 300, 1100, 3000]))
        if parent is None:
            body["x_nested"] = replacement
        else:
            parent[path[-1]] = replacement
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        text = dump(body).decode().replace(json.dumps(_DEEP), opener * depth + "1" + closer * depth)
        return text.encode(), f"deep {depth} at {path}"
    else:
        value = draw(ANY_JSON) if kind == "replace" else draw(WRONG)
        if parent is None:
            return dump(value), f"body replaced by {value!r}"
        parent[path[-1]] = value
    return dump(body), f"{kind} at {path}"


@pytest.mark.parametrize("path", [CHAT, EMBED, MESSAGES, AZURE])
def test_mutated_bodies_never_get_a_5xx(gateway: Gateway, path: str) -> None:
    proto, bodies = PROTOCOLS[path]

    @PROPERTY
    @given(case=mutated(bodies), team=st.sampled_from(["main", "capped"]))
    def run(case: tuple[bytes, str], team: str) -> None:
        raw, _label = case
        response, before = send(gateway, path, raw, team=team)
        check(gateway, response, proto, before)
        check_budget(gateway, response)

    run()


GARBAGE = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
    ANY_JSON.map(dump),
    st.sampled_from([b"", b"{", b"NaN", b'{"model": Infinity}', b'{"a":1e999}', b"\xef\xbb\xbf{}", b"\xff\xfe{",
                     b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"\\ud800"}]}', b"null"]),
)
CONTENT_TYPES = st.sampled_from([None, "application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                 "application/vnd.api+json", "APPLICATION/JSON", "", ";;", "application/jsonx"])


@pytest.mark.parametrize("path", [CHAT, EMBED, MESSAGES, AZURE])
def test_garbage_bytes_and_content_types_never_get_a_5xx(gateway: Gateway, path: str) -> None:
    proto, bodies = PROTOCOLS[path]

    @PROPERTY
    @given(raw=GARBAGE | bodies.map(dump), content_type=CONTENT_TYPES)
    def run(raw: bytes, content_type: str | None) -> None:
        response, before = send(gateway, path, raw, content_type=content_type)
        check(gateway, response, proto, before)

    run()


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
def test_arbitrary_attribution_headers_never_get_a_5xx(gateway: Gateway, path: str) -> None:
    proto, bodies = PROTOCOLS[path]

    @PROPERTY
    @given(body=bodies, headers=ANY_HEADERS)
    def run(body: dict[str, Any], headers: dict[str, str]) -> None:
        encoded = {name: value.encode("latin-1") for name, value in headers.items()}
        response, before = send(gateway, path, dump(body), headers=encoded)
        check(gateway, response, proto, before)
        if response.status_code == 200 and "traceparent" in headers:
            assert re.fullmatch(r"(0[0-9a-f]|[1-9a-e][0-9a-f]|f[0-9a-e])-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}",
                                headers["traceparent"].strip()), headers["traceparent"]

    run()



# -- strictness: what the provider documents is what passes --------------------------------------
# These tables are written from the providers' API references, independently of the gateway's
# own schema: a field's documented JSON types ("number" includes integers).

NUM, NULL = frozenset({"integer", "number"}), frozenset({"null"})
DOCUMENTED_KINDS: dict[str, dict[str, frozenset[str]]] = {
    CHAT: {"model": frozenset({"string"}), "messages": frozenset({"array"}),
           "stream": frozenset({"boolean"}) | NULL, "stream_options": frozenset({"object"}) | NULL,
           "temperature": NUM | NULL, "top_p": NUM | NULL, "presence_penalty": NUM | NULL,
           "frequency_penalty": NUM | NULL, "n": frozenset({"integer"}) | NULL,
           "max_tokens": frozenset({"integer"}) | NULL, "max_completion_tokens": frozenset({"integer"}) | NULL,
           "logit_bias": frozenset({"object"}) | NULL, "logprobs": frozenset({"boolean"}) | NULL,
           "top_logprobs": frozenset({"integer"}) | NULL, "seed": frozenset({"integer"}) | NULL,
           "user": frozenset({"string"}), "stop": frozenset({"string", "array"}) | NULL,
           "tools": frozenset({"array"}), "tool_choice": frozenset({"string", "object"}),
           "parallel_tool_calls": frozenset({"boolean"}), "response_format": frozenset({"object"}),
           "store": frozenset({"boolean"}) | NULL, "metadata": frozenset({"object"}) | NULL},
    EMBED: {"model": frozenset({"string"}), "input": frozenset({"string", "array"}),
            "dimensions": frozenset({"integer"}), "encoding_format": frozenset({"string"}),
            "user": frozenset({"string"})},
    MESSAGES: {"model": frozenset({"string"}), "messages": frozenset({"array"}),
               "max_tokens": frozenset({"integer"}), "stream": frozenset({"boolean"}),
               "system": frozenset({"string", "array"}), "temperature": NUM, "top_k": frozenset({"integer"}),
               "top_p": NUM, "stop_sequences": frozenset({"array"}), "metadata": frozenset({"object"}),
               "tools": frozenset({"array"}), "tool_choice": frozenset({"object"}),
               "thinking": frozenset({"object"})},
}
DOCUMENTED_PARTS = {
    CHAT: {"text", "image_url", "input_audio", "file", "refusal"},
    MESSAGES: {"text", "image", "document", "search_result", "thinking", "redacted_thinking", "tool_use",
               "tool_result", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
               "code_execution_tool_result", "bash_code_execution_tool_result",
               "text_editor_code_execution_tool_result", "mcp_tool_use", "mcp_tool_result", "container_upload"},
}
DOCUMENTED_ROLES = {CHAT: {"developer", "system", "user", "assistant", "tool", "function"},
                    MESSAGES: {"user", "assistant"}}


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def refused_naming(gw: Gateway, response: httpx.Response, proto: str, before: int, param: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    check(gw, response, proto, before)
    assert response.headers["x-costplane-error-param"] == param, response.text[:300]


@pytest.mark.parametrize("path", [CHAT, EMBED, MESSAGES])
def test_a_documented_field_of_another_json_type_is_refused_naming_it(gateway: Gateway, path: str) -> None:
    proto, bodies = PROTOCOLS[path]
    kinds = DOCUMENTED_KINDS[path]

    @PROPERTY
    @given(body=bodies, name=st.sampled_from(sorted(kinds)), value=ANY_JSON | WRONG)
    def run(body: dict[str, Any], name: str, value: Any) -> None:
        allowed = kinds[name]
        if json_kind(value) in allowed or (json_kind(value) == "integer" and "number" in allowed):
            return  # the same type: not this property's business
        body = {**body, name: value}
        response, before = send(gateway, path, dump(body))
        refused_naming(gateway, response, proto, before, name)

    run()


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
def test_undocumented_content_part_types_and_roles_are_refused_naming_the_path(gateway: Gateway,
                                                                              path: str) -> None:
    proto, bodies = PROTOCOLS[path]

    @PROPERTY
    @given(body=bodies, data=st.data(), odd=st.text(min_size=1, max_size=12))
    def run(body: dict[str, Any], data: st.DataObject, odd: str) -> None:
        body = copy.deepcopy(body)
        index = data.draw(st.integers(0, len(body["messages"]) - 1))
        message = body["messages"][index]
        if data.draw(st.booleans()):
            if odd in DOCUMENTED_ROLES[path]:
                return
            message["role"] = odd
            where = f"messages[{index}].role"
        else:
            if odd in DOCUMENTED_PARTS[path]:
                return
            if not isinstance(message.get("content"), list) or not message["content"]:
                message["content"] = [{"type": "text", "text": "hi"}]
            part = data.draw(st.integers(0, len(message["content"]) - 1))
            message["content"][part] = {**message["content"][part], "type": odd}
            where = f"messages[{index}].content[{part}].type"
        response, before = send(gateway, path, dump(body))
        refused_naming(gateway, response, proto, before, where)

    run()


@pytest.mark.parametrize("path", [CHAT, EMBED, MESSAGES])
def test_nesting_is_accepted_up_to_the_documented_limit_and_refused_beyond(gateway: Gateway, path: str) -> None:
    proto, bodies = PROTOCOLS[path]

    @PROPERTY
    @given(body=bodies, depth=st.integers(1, 200), opener=st.sampled_from(["[", '{"a":']))
    def run(body: dict[str, Any], depth: int, opener: str) -> None:
        closer = "]" if opener == "[" else "}"
        body = {**body, "x_nested": _DEEP}  # an unknown top-level parameter: forwarded, but bounded too
        raw = dump(body).decode().replace(json.dumps(_DEEP), opener * depth + "1" + closer * depth).encode()
        response, before = send(gateway, path, raw)
        if 1 + depth <= 64:  # the body object itself is level 1
            assert response.status_code == 200, response.text[:300]
            check(gateway, response, proto, before)
        else:
            refused_naming(gateway, response, proto, before, response.headers.get("x-costplane-error-param", "?"))
            assert response.headers["x-costplane-error-param"].startswith("x_nested")
            assert "nested deeper than 64 levels" in response.text

    run()
