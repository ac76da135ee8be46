"""Bedrock's wire pieces against independent oracles: the event-stream codec against botocore's
parser, the SigV4 signer against botocore's signer, the request tables, the input bound against
the simulator's token count, and the stream meters over any chunking."""

from __future__ import annotations

import base64
import contextlib
import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson
import pytest
import yarl
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from costplane.config import GatewaySettings, ProviderConfig
from costplane.gateway.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    encode_event,
    encode_exception,
    encode_message,
)
from costplane.gateway.protocols.base import AdapterRoute, Enforced, Incoming, RequestError
from costplane.gateway.protocols.bedrock import (
    ADAPTER,
    ConverseStreamMeter,
    InvokeStreamMeter,
    measure_converse,
)
from costplane.gateway.sigv4 import AwsCredentials, check_signed, parse_authorization, sign, verify
from costplane.gateway.tokens import IMAGE_BOUND
from costplane.simulator.tokens import count_chat_prompt_tokens

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ROUTES = {route.operation: route for route in ADAPTER.routes}

header_values = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=40),
                          st.binary(max_size=40), st.uuids())


@given(headers=st.dictionaries(st.text(min_size=1, max_size=20).filter(lambda s: len(s.encode()) < 256),
                               header_values, max_size=6),
       payload=st.binary(max_size=300))
@settings(max_examples=150, deadline=None)
def test_encoded_messages_parse_in_botocore(headers: dict[str, object], payload: bytes) -> None:
    raw = encode_message(headers, payload)  # type: ignore[arg-type]
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    (parsed,) = list(buffer)
    expected = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in headers.items()}
    got = {k: (str(uuid.UUID(bytes=v)) if isinstance(headers[k], uuid.UUID) else v)
           for k, v in parsed.headers.items()}
    assert got == expected
    assert parsed.payload == payload
    (mine,) = EventStreamDecoder().feed(raw)
    assert mine.raw == raw and mine.payload == payload and dict(mine.headers) == headers


@given(sizes=st.lists(st.integers(1, 64), min_size=1, max_size=40))
@settings(max_examples=80, deadline=None)
def test_decoder_yields_each_message_whatever_the_chunking(sizes: list[int]) -> None:
    messages = [encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f"w{i}"}})
                for i in range(5)] + [encode_exception("throttlingException", "slow down")]
    stream = b"".join(messages)
    decoder = EventStreamDecoder()
    out = []
    at = 0
    for size in sizes * 100:
        if at >= len(stream):
            break
        out += decoder.feed(stream[at:at + size])
        at += size
    out += decoder.feed(stream[at:])
    assert [m.raw for m in out] == messages
    assert decoder.pending == 0
    assert out[-1].message_type == "exception" and out[-1].event_type == "throttlingException"


@given(data=st.binary(max_size=400), flip=st.integers(0, 10_000))
@settings(max_examples=300, deadline=None)
def test_the_decoder_never_fails_other_than_with_event_stream_error(data: bytes, flip: int) -> None:
    """Garbage or a corrupted frame from upstream is an EventStreamError (a broken stream), never a crash."""
    frame = bytearray(encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}))
    frame[flip % len(frame)] ^= 0x5A
    with pytest.raises(EventStreamError):  # any one corrupted byte breaks a CRC
        EventStreamDecoder().feed(bytes(frame))
    with contextlib.suppress(EventStreamError):  # anything else raised fails the test
        EventStreamDecoder().feed(data)


@given(headers=st.binary(max_size=120), payload=st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_malformed_headers_inside_valid_crcs_are_an_event_stream_error(headers: bytes, payload: bytes) -> None:
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    with contextlib.suppress(EventStreamError):
        (message,) = EventStreamDecoder().feed(body + struct.pack(">I", zlib.crc32(body)))
        assert message.payload == payload


def test_decoder_refuses_bad_crcs_and_lengths() -> None:
    good = encode_event("messageStart", {"role": "assistant"})
    flipped = bytearray(good)
    flipped[-6] ^= 0x01  # payload byte: the message CRC no longer matches
    with pytest.raises(EventStreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(flipped))
    prelude = bytearray(good)
    prelude[3] ^= 0x01  # total length: the prelude CRC no longer matches
    with pytest.raises(EventStreamError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(prelude))
    decoder = EventStreamDecoder()
    assert decoder.feed(good[:-1]) == []
    assert decoder.pending == len(good) - 1  # a cut mid-message leaves bytes pending


model_ids = st.sampled_from(["anthropic.claude-3-5-sonnet-20240620-v1:0", "us.anthropic.claude-sonnet-4-6",
                             "amazon.nova-pro-v1:0",
                             "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0"])


@given(model=model_ids, body=st.binary(max_size=200), token=st.one_of(st.none(), st.text("abc/+=", min_size=1)),
       extra=st.dictionaries(st.sampled_from(["x-amzn-bedrock-trace", "accept", "x-custom"]),
                             st.text("ab c-", min_size=1, max_size=12).filter(str.strip), max_size=3),
       region=st.sampled_from(["us-east-1", "eu-west-3"]), port=st.sampled_from(["", ":8443"]))
@settings(max_examples=120, deadline=None)
def test_sigv4_matches_botocore(model: str, body: bytes, token: str | None, extra: dict[str, str], region: str,
                                port: str) -> None:
    """botocore's signer is the oracle: same request, same instant, same authorization header."""
    url = str(yarl.URL(f"https://bedrock-runtime.{region}.amazonaws.com{port}/model/{quote(model, safe='')}/converse"))
    headers = {"content-type": "application/json", **extra}
    request = AWSRequest("POST", url, data=body, headers=dict(headers))
    SigV4Auth(Credentials("AKIDEXAMPLE", SECRET, token), "bedrock", region).add_auth(request)
    now = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    mine = sign("POST", url, headers, body, AwsCredentials("AKIDEXAMPLE", SECRET, token), region=region, now=now)
    assert mine["authorization"] == request.headers["Authorization"]
    assert mine.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")
    signed = {**headers, **mine, "host": yarl.URL(url).raw_authority}
    assert verify("POST", url, signed, body, SECRET)
    assert not verify("POST", url, signed, body + b"x", SECRET)
    assert not verify("POST", url, signed, body, SECRET + "x")
    parsed = parse_authorization(mine["authorization"])
    assert parsed is not None and parsed.region == region and parsed.service == "bedrock"


def test_check_signed_refuses_stale_malformed_and_forged_signatures() -> None:
    url = "http://gw.internal:8080/model/amazon.nova-pro-v1%3A0/converse"
    when = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)
    headers = {"content-type": "application/json"}
    added = sign("POST", url, headers, b"{}", AwsCredentials("cpk_x", "cpk_x"), region="us-east-1", now=when)
    signed = {**headers, **added, "host": "gw.internal:8080"}
    paths = ("/model/amazon.nova-pro-v1%3A0/converse",)
    assert check_signed("POST", "gw.internal:8080", paths, "", signed, b"{}", "cpk_x", now=when) is None
    late = check_signed("POST", "gw.internal:8080", paths, "", signed, b"{}", "cpk_x", now=when + timedelta(minutes=16))
    assert late is not None and "expired" in late
    forged = check_signed("POST", "gw.internal:8080", paths, "", signed, b"{ }", "cpk_x", now=when)
    assert forged is not None and "does not match" in forged
    assert "malformed" in str(check_signed("POST", "gw.internal:8080", paths, "", {**signed, "x-amz-date": "yesterday"},
                                           b"{}", "cpk_x", now=when))


def _incoming(operation: str, body: object, model: str = "anthropic.claude-3-5-sonnet-20240620-v1:0") -> Incoming:
    return Incoming("POST", f"/model/{model}/{operation}", {"modelId": model}, {}, {}, orjson.dumps(body))


def _parse(operation: str, body: object, model: str = "anthropic.claude-3-5-sonnet-20240620-v1:0"):  # type: ignore[no-untyped-def]
    return ADAPTER.parse(ROUTES[operation], _incoming(operation, body, model), GatewaySettings())


@pytest.mark.parametrize(("operation", "body", "param"), [
    ("converse", {}, "messages"),
    ("converse", {"messages": []}, "messages"),
    ("converse", {"messages": [{"role": "system", "content": [{"text": "x"}]}]}, "messages[0].role"),
    ("converse", {"messages": [{"role": "user", "content": [{"text": "x", "image": {}}]}]}, "messages[0].content[0]"),
    ("converse", {"messages": [{"role": "user", "content": [{"sound": "x"}]}]}, "messages[0].content[0].sound"),
    ("converse", {"messages": [{"role": "user", "content": [{"text": 3}]}]}, "messages[0].content[0].text"),
    ("converse", {"messages": [{"role": "user", "content": [{"text": "x"}]}], "inferenceConfig": {"maxTokens": 0}},
     "inferenceConfig.maxTokens"),
    ("converse-stream", {"messages": [{"role": "user", "content": [{"text": "x"}]}],
                         "toolConfig": {"tools": [{"toolSpec": {"name": "f"}}]}}, "toolConfig.tools[0].toolSpec"),
    ("converse", {"messages": [{"role": "user", "content": [{"text": "x"}]}], "serviceTier": {"type": "priority"}},
     "serviceTier.type"),
    ("converse", {"messages": [{"role": "user", "content": [{"text": "x"}]}],
                  "performanceConfig": {"latency": "optimized"}}, "performanceConfig.latency"),
    ("invoke", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 5}, "anthropic_version"),
    ("invoke", {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "x"}]},
     "max_tokens"),
])
def test_bad_bodies_name_their_field(operation: str, body: object, param: str) -> None:
    with pytest.raises(RequestError) as caught:
        _parse(operation, body)
    assert caught.value.status == 400
    assert caught.value.param is not None and caught.value.param.startswith(param), caught.value.param


def test_invoke_is_governed_for_anthropic_models_only_and_model_ids_are_checked() -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(RequestError) as caught:
        _parse("invoke", body, "amazon.nova-pro-v1:0")
    assert caught.value.param == "modelId"
    with pytest.raises(RequestError) as caught:
        _parse("converse", {"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "bad model id")
    assert caught.value.param == "modelId"
    facts = _parse("invoke-with-response-stream", body)
    assert facts.endpoint == "invoke" and facts.stream and facts.max_tokens == 5


def test_unpriced_tiers_are_refused_and_invoke_cannot_be_routed_off_anthropic() -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    model = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    priority = Incoming("POST", "/", {"modelId": model}, {}, {"x-amzn-bedrock-service-tier": "priority"},
                        orjson.dumps(body))
    with pytest.raises(RequestError) as caught:
        ADAPTER.parse(ROUTES["invoke"], priority, GatewaySettings())
    assert caught.value.param == "x-amzn-bedrock-service-tier"
    flex = _parse("converse", {"messages": [{"role": "user", "content": [{"text": "x"}]}],
                               "serviceTier": {"type": "flex"}})
    assert flex.body["serviceTier"] == {"type": "flex"}  # charged at the standard price, an upper bound
    facts = _parse("invoke", body)
    provider = ProviderConfig(name="b", type="bedrock", base_url="https://bedrock-runtime.us-east-1.amazonaws.com")
    with pytest.raises(RequestError) as routed:
        ADAPTER.build_upstream(facts, Enforced(provider, "amazon.nova-micro-v1:0", 5, {}), _incoming("invoke", body))
    assert routed.value.param == "modelId"


def test_upstream_request_carries_the_cap_the_model_and_a_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_AWS_KEY", "AKIDEXAMPLE")
    monkeypatch.setenv("T_AWS_SECRET", SECRET)
    provider = ProviderConfig(name="bedrock", type="bedrock", base_url="https://bedrock-runtime.eu-west-3.amazonaws.com",
                              region=None, aws_access_key_id_env="T_AWS_KEY", aws_secret_access_key_env="T_AWS_SECRET")
    body = {"messages": [{"role": "user", "content": [{"text": "hello"}]}], "inferenceConfig": {"temperature": 0.5}}
    facts = _parse("converse", body)
    assert facts.max_tokens is None and facts.params == {"temperature": 0.5}
    enforced = Enforced(provider, "us.anthropic.claude-sonnet-4-6", 77, {"temperature": 0, "reasoning": "low"})
    upstream = ADAPTER.sign(ADAPTER.build_upstream(facts, enforced, _incoming("converse", body)), provider)
    sent = orjson.loads(upstream.body)
    assert sent["inferenceConfig"] == {"temperature": 0, "maxTokens": 77}
    assert sent["additionalModelRequestFields"] == {"reasoning": "low"}
    assert upstream.url == "https://bedrock-runtime.eu-west-3.amazonaws.com/model/us.anthropic.claude-sonnet-4-6/converse"
    headers = {**upstream.headers, "host": "bedrock-runtime.eu-west-3.amazonaws.com"}
    assert "/eu-west-3/bedrock/aws4_request" in headers["authorization"]
    assert verify("POST", upstream.url, headers, upstream.body, SECRET)
    monkeypatch.setenv("T_BEDROCK_KEY", "ABSK-key")
    keyed = ProviderConfig(name="b", type="bedrock", base_url="https://bedrock-runtime.us-east-1.amazonaws.com",
                           api_key_env="T_BEDROCK_KEY", aws_access_key_id_env="T_AWS_KEY",
                           aws_secret_access_key_env="T_AWS_SECRET")
    keyed_request = ADAPTER.sign(ADAPTER.build_upstream(facts, replace_provider(enforced, keyed),
                                                        _incoming("converse", body)), keyed)
    assert keyed_request.headers["authorization"] == "Bearer ABSK-key"  # an API key is forwarded, not signed


def replace_provider(enforced: Enforced, provider: ProviderConfig) -> Enforced:
    return Enforced(provider, enforced.model, enforced.max_tokens, enforced.mutations)


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=120)


@given(turns=st.lists(texts, min_size=1, max_size=6), system=st.lists(texts.filter(str.strip), max_size=2))
@settings(max_examples=150, deadline=None)
def test_the_input_bound_covers_the_simulated_token_count(turns: list[str], system: list[str]) -> None:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": [{"text": t}, {"cachePoint": {
        "type": "default"}}]} for i, t in enumerate(turns)]
    body = {"messages": messages, "system": [{"text": s} for s in system]}
    chat = [{"role": "system", "content": "".join(system)}] if system else []
    chat += [{"role": m["role"], "content": t} for m, t in zip(messages, turns, strict=True)]
    size = measure_converse(body)
    assert size.bound >= count_chat_prompt_tokens(chat)
    assert 0 < size.estimate <= size.bound


def test_blocks_of_unknown_size_are_bounded_by_the_context_window() -> None:
    pdf = {"document": {"format": "pdf", "name": "invoice", "source": {"bytes": "JVBERi0xLjQK"}}}
    body = {"messages": [{"role": "user", "content": [{"text": "Total?"}, pdf]}]}
    assert _parse("converse", body).size.bound == 200_000  # claude-3-5-sonnet's window in the price data
    video = {"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://bucket/clip.mp4"}}}}
    with pytest.raises(RequestError) as caught:
        _parse("converse", {"messages": [{"role": "user", "content": [{"text": "x"}, video]}]}, "acme.unpriced-v1")
    assert caught.value.param == "messages[0].content[1].video"
    text = {"document": {"format": "txt", "name": "notes", "source": {"bytes": "aGVsbG8gd29ybGQ="}}}
    small = _parse("converse", {"messages": [{"role": "user", "content": [{"text": "x"}, text]}]}).size
    assert small.bound < 100
    image = {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
    result = {"toolResult": {"toolUseId": "t1", "content": [image]}}
    with_image = _parse("converse", {"messages": [{"role": "user", "content": [result]}]}).size
    assert with_image.bound >= IMAGE_BOUND
    tools = {"tools": [{"systemTool": {"name": "nova_grounding"}}]}
    with pytest.raises(RequestError) as system_tool:
        _parse("converse", {"messages": [{"role": "user", "content": [{"text": "x"}]}], "toolConfig": tools})
    assert system_tool.value.param == "toolConfig.tools[0].systemTool"


def _converse_frames(usage: dict[str, int]) -> list[bytes]:
    return ([encode_event("messageStart", {"role": "assistant"})]
            + [encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w}}) for w in "abc"]
            + [encode_event("contentBlockStop", {"contentBlockIndex": 0}),
               encode_event("messageStop", {"stopReason": "end_turn"}),
               encode_event("metadata", {"usage": usage, "metrics": {"latencyMs": 1}})])


@given(cut=st.integers(1, 400))
@settings(max_examples=60, deadline=None)
def test_converse_meter_relays_bytes_unchanged_and_reads_metadata(cut: int) -> None:
    usage = {"inputTokens": 10, "outputTokens": 3, "totalTokens": 33, "cacheReadInputTokens": 20,
             "cacheWriteInputTokens": 0}
    stream = b"".join(_converse_frames(usage))
    meter = ConverseStreamMeter()
    events = meter.feed(stream[:cut]) + meter.feed(stream[cut:])
    assert b"".join(e for e, _ in events) == stream
    assert [final for _, final in events] == [False] * 6 + [True]
    assert meter.done and meter.deltas == 3
    assert meter.usage is not None
    assert (meter.usage.input_tokens, meter.usage.cache_read_tokens, meter.usage.output_tokens) == (30, 20, 3)


def test_a_converse_stream_cut_before_metadata_is_charged_for_what_was_seen() -> None:
    frames = _converse_frames({"inputTokens": 1, "outputTokens": 1, "totalTokens": 2})
    meter = ConverseStreamMeter()
    meter.feed(b"".join(frames[:3]) + frames[3][:5])
    assert not meter.done and meter.usage is None
    charged = meter.charged(True, 120)
    assert (charged.input_tokens, charged.output_tokens) == (120, 2)
    assert ADAPTER.stream_meter(_parse("converse-stream", {"messages": [
        {"role": "user", "content": [{"text": "x"}]}]})).media_type == "application/vnd.amazon.eventstream"


def _chunk(event: Any) -> bytes:
    return encode_event("chunk", {"bytes": base64.b64encode(orjson.dumps(event)).decode()})


def test_invoke_stream_meter_reads_the_anthropic_events_inside_chunks() -> None:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_bdrk_1", "usage": {
            "input_tokens": 5, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 2, "output_tokens": 1}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "b"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 14}},
    ]
    meter = InvokeStreamMeter()
    out = []
    for event in events:
        out += meter.feed(_chunk(event))
    assert [final for _, final in out] == [False] * 4 + [True]
    assert meter.response_id == "msg_bdrk_1" and meter.done
    usage = meter.usage
    assert usage is not None
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens) == (14, 7, 2, 9)
    cut = InvokeStreamMeter()
    for event in events[:3]:
        cut.feed(_chunk(event))
    assert cut.charged(True, 999).output_tokens == 2  # partial output counts the deltas received


def test_errors_have_bedrocks_shape() -> None:
    for status, kind in ((400, "ValidationException"), (402, "ServiceQuotaExceededException"),
                         (403, "AccessDeniedException"), (429, "ThrottlingException"),
                         (503, "ServiceUnavailableException")):
        reply = ADAPTER.error(status, "code", "why")
        assert orjson.loads(reply.body) == {"message": "why"}
        assert reply.headers["x-amzn-errortype"] == kind
    (message,) = EventStreamDecoder().feed(ADAPTER.stream_error("cut", "upstream_cut"))
    assert message.message_type == "exception" and message.event_type == "modelStreamErrorException"
    assert AdapterRoute in (type(r) for r in ADAPTER.routes)
