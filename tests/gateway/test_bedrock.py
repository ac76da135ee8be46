"""AWS Bedrock Runtime through the governed gateway, with the official client: `boto3`'s
`bedrock-runtime` client pointed at the gateway (`endpoint_url`) with the costplane key as its
Bedrock API key (`AWS_BEARER_TOKEN_BEDROCK`, sent as a bearer token over HTTPS), the gateway
signing its upstream requests with SigV4 (the simulator accepts only valid signatures) or
forwarding a Bedrock API key."""

from __future__ import annotations

import datetime
import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import genai_prices
import pytest
import uvicorn
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from costplane.app import Application
from costplane.config import parse_config
from costplane.gateway.app import create_gateway
from costplane.gateway.keys import create_key
from costplane.gateway.protocols import ADAPTERS
from costplane.gateway.protocols.bedrock import ADAPTER as BEDROCK
from costplane.money import decimal_to_nano, format_usd
from costplane.serving import BackgroundServer, bind_socket, uvicorn_config
from costplane.simulator import bedrock_api
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig

from .conftest import write_bundle

SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PROFILE = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
NOVA = "amazon.nova-pro-v1:0"
KEY_ID_ENV, SECRET_ENV, API_KEY_ENV = "COSTPLANE_TEST_AWS_KEY_ID", "COSTPLANE_TEST_AWS_SECRET", "COSTPLANE_TEST_BR_KEY"


def expected_nano(model: str, **usage: int) -> int:
    """The independent computation: genai-prices' own price of these tokens at AWS Bedrock."""
    price = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id="aws")
    return decimal_to_nano(Decimal(price.total_price))


def converse_cost(model: str, usage: dict[str, int]) -> int:
    read, write = usage.get("cacheReadInputTokens", 0), usage.get("cacheWriteInputTokens", 0)
    return expected_nano(model, input_tokens=usage["inputTokens"] + read + write, cache_read_tokens=read,
                         cache_write_tokens=write, output_tokens=usage["outputTokens"])


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (botocore sends a bearer token over HTTPS only)."""
    root = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (root / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return root / "cert.pem", root / "key.pem"


class TlsServer:
    """uvicorn over HTTPS in a daemon thread, on a port bound before it starts."""

    def __init__(self, app: Any, cert: Path, key: Path) -> None:
        self._socket = bind_socket("127.0.0.1", 0)
        self.url = f"https://127.0.0.1:{self._socket.getsockname()[1]}"
        # every test request has completed by shutdown: an idle TLS connection need not be waited for
        self._server = uvicorn.Server(uvicorn_config(app, graceful_shutdown_s=0.2, ssl_certfile=str(cert),
                                                     ssl_keyfile=str(key)))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> TlsServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the TLS server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


def start_simulator(config: SimulatorConfig) -> BackgroundServer:
    return BackgroundServer(create_app(config)).start()  # the simulator serves Bedrock among its protocols


@pytest.fixture(scope="module")
def simulator() -> Iterator[BackgroundServer]:
    server = start_simulator(SimulatorConfig())
    yield server
    server.stop()


@dataclass
class Gateway:
    app: Application
    url: str  # https
    plain_url: str  # http, for load tests with httpx
    cert: Path
    clients: list[Any] = field(default_factory=list)

    def key(self, **attributes: str) -> str:
        return create_key(self.app.store, "test", attributes)[0]

    def client(self, monkeypatch: pytest.MonkeyPatch, key: str) -> Any:
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", key)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        client = boto3.session.Session().client(
            "bedrock-runtime", endpoint_url=self.url, region_name="us-east-1", verify=str(self.cert),
            config=Config(retries={"max_attempts": 1}, read_timeout=20, connect_timeout=5))
        self.clients.append(client)
        return client


@pytest.fixture
def make_gateway(tmp_path: Path, simulator: BackgroundServer, tls: tuple[Path, Path],
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Gateway]]:
    monkeypatch.setenv(KEY_ID_ENV, bedrock_api.SIMULATOR_ACCESS_KEY_ID)
    monkeypatch.setenv(SECRET_ENV, bedrock_api.SIMULATOR_SECRET_ACCESS_KEY)
    monkeypatch.setenv(API_KEY_ENV, bedrock_api.SIMULATOR_API_KEY)
    opened: list[tuple[Gateway, TlsServer, BackgroundServer]] = []

    def make(bundle: str | None = None, *, upstream: str | None = None, auth: str = "sigv4",
             store_url: str | None = None) -> Gateway:
        n = len(opened)
        provider: dict[str, Any] = {"type": "bedrock", "base_url": upstream or simulator.url, "region": "us-east-1",
                                    "models": ["*anthropic.*", "amazon.*"]}
        if auth == "sigv4":
            provider.update(aws_access_key_id_env=KEY_ID_ENV, aws_secret_access_key_env=SECRET_ENV)
        else:
            provider["api_key_env"] = API_KEY_ENV
        data = {"store": store_url or f"sqlite:///{tmp_path}/g{n}.db",
                "bundle": str(write_bundle(tmp_path / f"g{n}", bundle)) if bundle else None,
                "providers": {"aws": provider}}
        application = Application(parse_config(data, base=tmp_path))
        gateway_app = create_gateway(application)
        secure = TlsServer(gateway_app, *tls).__enter__()
        plain = BackgroundServer(create_gateway(application)).start()
        gateway = Gateway(application, secure.url, plain.url, tls[0])
        opened.append((gateway, secure, plain))
        return gateway

    yield make
    for gateway, secure, plain in opened:
        for client in gateway.clients:
            client.close()  # no idle keep-alive connection holds the server's shutdown
        secure.__exit__()
        plain.stop()
        gateway.app.close()


USER = [{"role": "user", "content": [{"text": "Summarise the quarterly cloud invoice in three lines."}]}]


def test_converse_is_metered_exactly_and_attributed(make_gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert BEDROCK in ADAPTERS  # registered: every gateway serves Bedrock
    gw = make_gateway()
    client = gw.client(monkeypatch, gw.key(team="finance", agent="summariser"))
    system = [{"text": "You are a careful analyst of cloud bills. " * 30}, {"cachePoint": {"type": "default"}}]
    first = client.converse(modelId=SONNET, system=system, messages=USER, inferenceConfig={"maxTokens": 60})
    second = client.converse(modelId=PROFILE, system=system, messages=USER, inferenceConfig={"maxTokens": 60})
    assert first["usage"]["cacheWriteInputTokens"] > 0 and second["usage"]["cacheReadInputTokens"] == 0
    third = client.converse(modelId=PROFILE, system=system, messages=USER, inferenceConfig={"maxTokens": 60})
    assert third["usage"]["cacheReadInputTokens"] > 0  # the profile's own prefix, written by `second`
    events = sorted(gw.app.store.list_events(), key=lambda e: e.ts)
    assert [e.model for e in events] == [SONNET, PROFILE, PROFILE]
    for event, reply in zip(events, (first, second, third), strict=True):
        want = converse_cost(event.model, reply["usage"])
        assert event.cost_nano == want > 0
        assert reply["ResponseMetadata"]["HTTPHeaders"]["x-costplane-cost-usd"] == format_usd(want)
        assert (event.context.team, event.context.agent) == ("finance", "summariser")
        assert event.usage.cache_read_tokens == reply["usage"]["cacheReadInputTokens"]
        assert event.status == "ok"
    assert gw.app.store.open_reservations() == 0


def test_converse_stream_is_metered_from_its_metadata_event(make_gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.client(monkeypatch, gw.key(team="ml"))
    plain = client.converse(modelId=NOVA, messages=USER, inferenceConfig={"maxTokens": 80, "temperature": 0.2})
    streamed = client.converse_stream(modelId=NOVA, messages=USER, inferenceConfig={"maxTokens": 80,
                                                                                    "temperature": 0.2})
    assert streamed["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    text, usage, stop = "", None, None
    for event in streamed["stream"]:
        text += event.get("contentBlockDelta", {}).get("delta", {}).get("text", "")
        stop = event.get("messageStop", {}).get("stopReason", stop)
        usage = event.get("metadata", {}).get("usage", usage)
    assert text == plain["output"]["message"]["content"][0]["text"]
    assert usage is not None and stop == plain["stopReason"]
    events = gw.app.store.list_events()
    assert [e.cost_nano for e in events] == [converse_cost(NOVA, usage)] * 2
    assert {e.status for e in events} == {"ok"}


def test_a_tool_call_round_trip_is_metered(make_gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.client(monkeypatch, gw.key(team="agents"))
    tools = {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather of a city", "inputSchema": {
        "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}}]}
    ask = [{"role": "user", "content": [{"text": "What is the weather in Paris?"}]}]
    reply = client.converse(modelId=SONNET, messages=ask, toolConfig=tools)
    assert reply["stopReason"] == "tool_use"
    use = reply["output"]["message"]["content"][-1]["toolUse"]
    follow = [*ask, reply["output"]["message"], {"role": "user", "content": [{"toolResult": {
        "toolUseId": use["toolUseId"], "content": [{"json": {"celsius": 21}}]}}]}]
    final = client.converse_stream(modelId=SONNET, messages=follow, toolConfig=tools)
    (usage,) = [e["metadata"]["usage"] for e in final["stream"] if "metadata" in e]
    events = sorted(gw.app.store.list_events(), key=lambda e: e.ts)
    assert [e.cost_nano for e in events] == [converse_cost(SONNET, reply["usage"]), converse_cost(SONNET, usage)]


def test_invoke_model_for_anthropic_models_plain_and_streamed(make_gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(auth="api-key")
    client = gw.client(monkeypatch, gw.key(team="legacy"))
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,
            "messages": [{"role": "user", "content": "Name three cost drivers of GPU training."}]}
    plain = json.loads(client.invoke_model(modelId=SONNET, body=json.dumps(body))["body"].read())
    streamed = client.invoke_model_with_response_stream(modelId=SONNET, body=json.dumps(body))
    inner = [json.loads(e["chunk"]["bytes"]) for e in streamed["body"]]
    assert "".join(e["delta"].get("text", "") for e in inner if e["type"] == "content_block_delta") == \
        plain["content"][0]["text"]
    usage = plain["usage"]
    want = expected_nano(SONNET, input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"])
    assert [e.cost_nano for e in gw.app.store.list_events()] == [want, want]
    with pytest.raises(ClientError) as refused:
        client.invoke_model(modelId=NOVA, body=json.dumps({"inputText": "hi"}))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Converse" in refused.value.response["Error"]["Message"]


BUDGET = """
kind: Budget
name: tiny
scope: ctx.team == "capped"
amount: 0.000001 USD
enforcement: hard
---
kind: Policy
name: no-opus
on: llm.request
when: request.model.contains("opus")
effect: deny
reason: opus models are not allowed
"""


def test_denials_are_client_errors_with_bedrock_codes(make_gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(BUDGET)
    client = gw.client(monkeypatch, gw.key(team="capped"))
    with pytest.raises(ClientError) as budget:
        client.converse(modelId=SONNET, messages=USER)
    assert budget.value.response["Error"]["Code"] == "ServiceQuotaExceededException"
    assert budget.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402
    with pytest.raises(ClientError) as stream_budget:
        client.converse_stream(modelId=SONNET, messages=USER)
    assert stream_budget.value.response["Error"]["Code"] == "ServiceQuotaExceededException"
    other = gw.client(monkeypatch, gw.key(team="free"))
    with pytest.raises(ClientError) as policy:
        other.converse(modelId="anthropic.claude-opus-4-1-20250805-v1:0", messages=USER)
    assert policy.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "opus models are not allowed" in policy.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as invalid:
        other.converse(modelId=SONNET, messages=[{"role": "user", "content": [{"text": "x"}, {"cachePoint": {
            "type": "forever"}}]}])
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    assert "messages[0].content[1].cachePoint.type" in invalid.value.response["Error"]["Message"]
    stranger = gw.client(monkeypatch, "not-a-costplane-key")
    with pytest.raises(ClientError) as unknown:
        stranger.converse(modelId=SONNET, messages=USER)
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert gw.app.store.list_events() == [] and gw.app.store.open_reservations() == 0


def test_a_cut_stream_ends_with_an_exception_event_and_is_charged(make_gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cutting = start_simulator(SimulatorConfig(fault_rate=1.0, faults=("cut",)))
    try:
        gw = make_gateway(upstream=cutting.url)
        client = gw.client(monkeypatch, gw.key(team="ml"))
        streamed = client.converse_stream(modelId=SONNET, messages=USER, inferenceConfig={"maxTokens": 100})
        deltas = 0
        with pytest.raises(ClientError) as cut:
            for event in streamed["stream"]:
                deltas += "contentBlockDelta" in event
        assert cut.value.response["Error"]["Code"] == "modelStreamErrorException"
        assert deltas > 0
        (event,) = gw.app.store.list_events()
        assert event.status == "cut" and event.usage.output_tokens == deltas and event.cost_nano > 0
        assert gw.app.store.open_reservations() == 0
    finally:
        cutting.stop()


def test_upstream_requests_are_signed_and_a_bad_signature_charges_nothing(make_gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.client(monkeypatch, gw.key(team="ml"))
    client.converse(modelId=SONNET, messages=USER)  # the simulator answers only a valid SigV4 signature
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    with pytest.raises(ClientError) as refused:
        client.converse(modelId=SONNET, messages=USER)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "signature" in refused.value.response["Error"]["Message"]
    assert len(gw.app.store.list_events()) == 1 and gw.app.store.open_reservations() == 0


ROUTE = """
kind: Policy
name: experiments-use-nova-micro
on: llm.request
when: ctx.tier == "experiment" && request.endpoint in ["converse", "invoke"] && request.model.contains("sonnet")
effect: route
set: {model: amazon.nova-micro-v1:0}
reason: experiments use the small model
"""


def test_a_route_policy_serves_another_model_and_the_cache_answers_repeats(make_gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(ROUTE)
    client = gw.client(monkeypatch, gw.key(team="lab", tier="experiment"))
    client.meta.events.register("before-sign.bedrock-runtime.*",
                                lambda request, **_: request.headers.__setitem__("x-costplane-cache", "on"))
    ask = {"modelId": SONNET, "messages": USER, "inferenceConfig": {"maxTokens": 40, "temperature": 0}}
    first, again = client.converse(**ask), client.converse(**ask)
    assert first["output"] == again["output"]
    headers = again["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-costplane-model"] == "amazon.nova-micro-v1:0" and headers["x-costplane-cache"] == "hit"
    served, cached = sorted(gw.app.store.list_events(), key=lambda e: e.ts)
    assert (served.model, served.requested_model, served.status) == ("amazon.nova-micro-v1:0", SONNET, "ok")
    assert served.cost_nano == converse_cost("amazon.nova-micro-v1:0", first["usage"])
    assert (cached.status, cached.cost_nano) == ("cached", 0)
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(ClientError) as refused:  # InvokeModel's Anthropic body cannot go to a Nova model
        client.invoke_model(modelId=SONNET, body=json.dumps(body))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert len(gw.app.store.list_events()) == 2 and gw.app.store.open_reservations() == 0


def test_over_plain_http_the_key_signs_requests_with_sigv4(make_gateway) -> None:  # type: ignore[no-untyped-def]
    """botocore sends a bearer token over HTTPS only; over HTTP, SigV4 with the costplane key as both
    access key id and secret access key authenticates the same key."""
    gw = make_gateway()
    key = gw.key(team="dev")

    def signed_client(secret: str) -> Any:
        client = boto3.session.Session().client(
            "bedrock-runtime", endpoint_url=gw.plain_url, region_name="us-east-1", aws_access_key_id=key,
            aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))
        gw.clients.append(client)
        return client

    reply = signed_client(key).converse(modelId=PROFILE, messages=USER)
    streamed = signed_client(key).converse_stream(modelId="arn:aws:bedrock:us-east-1:123456789012:"
                                                  f"inference-profile/{PROFILE}", messages=USER)
    assert any("metadata" in event for event in streamed["stream"])
    (event, _) = sorted(gw.app.store.list_events(), key=lambda e: e.ts)
    assert event.context.team == "dev" and event.cost_nano == converse_cost(PROFILE, reply["usage"])
    with pytest.raises(ClientError) as forged:
        signed_client("not-the-key").converse(modelId=PROFILE, messages=USER)
    assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert forged.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(gw.app.store.list_events()) == 2
