"""The simulator's Bedrock Runtime endpoints, called directly: boto3 with SigV4, a Bedrock API key
as bearer, refused credentials, Bedrock-shaped faults, cache points, reasoning and cut streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from starlette.applications import Starlette

from costplane.gateway.eventstream import EventStreamDecoder
from costplane.serving import BackgroundServer
from costplane.simulator import bedrock_api
from costplane.simulator.config import SimulatorConfig
from costplane.simulator.state import SimulatorState

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
USER = [{"role": "user", "content": [{"text": "Which of our services costs the most?"}]}]


def serve(config: SimulatorConfig) -> BackgroundServer:
    return BackgroundServer(Starlette(routes=bedrock_api.routes(SimulatorState(config)))).start()


@pytest.fixture(scope="module")
def simulator() -> Iterator[BackgroundServer]:
    server = serve(SimulatorConfig())
    yield server
    server.stop()


def client(url: str, secret: str = bedrock_api.SIMULATOR_SECRET_ACCESS_KEY,
           key_id: str = bedrock_api.SIMULATOR_ACCESS_KEY_ID) -> Any:
    return boto3.session.Session().client(
        "bedrock-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key_id,
        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}, read_timeout=10))


def test_answers_are_deterministic_and_cache_points_are_read_back(simulator: BackgroundServer) -> None:
    bedrock = client(simulator.url)
    system = [{"text": "Answer as a FinOps analyst. " * 20}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
    first = bedrock.converse(modelId="us." + MODEL, system=system, messages=USER, inferenceConfig={"maxTokens": 30})
    again = bedrock.converse(modelId="us." + MODEL, system=system, messages=USER, inferenceConfig={"maxTokens": 30})
    assert first["output"] == again["output"]
    written, read = first["usage"], again["usage"]
    assert written["cacheWriteInputTokens"] > 0 and written["cacheDetails"] == [
        {"ttl": "1h", "inputTokens": written["cacheWriteInputTokens"]}]
    assert read["cacheReadInputTokens"] == written["cacheWriteInputTokens"] and read["cacheWriteInputTokens"] == 0
    assert read["inputTokens"] == written["inputTokens"]  # inputTokens excludes the cache tokens
    assert read["totalTokens"] == read["inputTokens"] + read["cacheReadInputTokens"] + read["outputTokens"]
    assert first["stopReason"] == "max_tokens" and first["usage"]["outputTokens"] == 30


def test_reasoning_is_streamed_and_counted_as_output(simulator: BackgroundServer) -> None:
    bedrock = client(simulator.url)
    streamed = bedrock.converse_stream(modelId=MODEL, messages=USER, inferenceConfig={"maxTokens": 200},
                                       additionalModelRequestFields={"thinking": {"type": "enabled",
                                                                                  "budget_tokens": 1024}})
    thinking = text = 0
    usage: dict[str, int] = {}
    for event in streamed["stream"]:
        delta = event.get("contentBlockDelta", {}).get("delta", {})
        thinking += "text" in delta.get("reasoningContent", {})
        text += "text" in delta
        usage = event.get("metadata", {}).get("usage", usage)
    assert thinking > 0 and text > 0
    assert usage["outputTokens"] == thinking + text


def test_a_bedrock_api_key_works_as_bearer_and_bad_credentials_are_refused(simulator: BackgroundServer) -> None:
    url = f"{simulator.url}/model/{MODEL}/converse"
    body = {"messages": USER}
    ok = httpx.post(url, json=body, headers={"authorization": f"Bearer {bedrock_api.SIMULATOR_API_KEY}"})
    assert ok.status_code == 200 and ok.json()["usage"]["outputTokens"] > 0
    for headers, kind in (({}, "MissingAuthenticationTokenException"),
                          ({"authorization": "Bearer ABSK-unknown"}, "UnrecognizedClientException")):
        refused = httpx.post(url, json=body, headers=headers)
        assert refused.status_code == 403
        assert refused.headers["x-amzn-errortype"].split(":")[0] == kind
    with pytest.raises(ClientError) as signature:
        client(simulator.url, secret="wrong").converse(modelId=MODEL, messages=USER)
    assert signature.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as unknown:
        client(simulator.url, key_id="AKIAUNKNOWN").converse(modelId=MODEL, messages=USER)
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"


@pytest.mark.parametrize(("fault", "code"), [("429", "ThrottlingException"), ("503", "ServiceUnavailableException"),
                                             ("400", "ValidationException"), ("500", "InternalServerException")])
def test_faults_answer_in_bedrocks_shape(simulator: BackgroundServer, fault: str, code: str) -> None:
    bedrock = client(simulator.url)
    bedrock.meta.events.register("before-sign.bedrock-runtime.*",
                                 lambda request, **_: request.headers.__setitem__("x-simulator-fault", fault))
    with pytest.raises(ClientError) as caught:
        bedrock.converse(modelId=MODEL, messages=USER)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == int(fault)


def test_cut_streams_stop_before_their_usage() -> None:
    server = serve(SimulatorConfig(fault_rate=1.0, faults=("cut",)))
    try:
        with httpx.stream("POST", f"{server.url}/model/{MODEL}/converse-stream", json={"messages": USER},
                          headers={"authorization": f"Bearer {bedrock_api.SIMULATOR_API_KEY}"}) as response:
            assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
            decoder = EventStreamDecoder()
            kinds: list[str] = []
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_bytes():
                    kinds += [m.event_type for m in decoder.feed(chunk)]
        assert kinds[0] == "messageStart" and "contentBlockDelta" in kinds and "metadata" not in kinds
    finally:
        server.stop()


def test_invoke_speaks_anthropic_and_refuses_other_models(simulator: BackgroundServer) -> None:
    bedrock = client(simulator.url)
    tool = {"name": "lookup_invoice", "input_schema": {"type": "object", "properties": {"invoice": {"type": "string"}}}}
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200, "tools": [tool],
            "messages": [{"role": "user", "content": "Find invoice 42"}]}
    reply = json.loads(bedrock.invoke_model(modelId=MODEL, body=json.dumps(body))["body"].read())
    assert reply["stop_reason"] == "tool_use" and reply["content"][-1]["name"] == "lookup_invoice"
    assert reply["id"].startswith("msg_bdrk_")
    with pytest.raises(ClientError) as refused:
        bedrock.invoke_model(modelId="amazon.nova-pro-v1:0", body=json.dumps({"inputText": "hi"}))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
