"""Azure OpenAI through the gateway with `openai.AzureOpenAI`: deployment paths and v1 paths, plain
and streamed, priced by the deployment's model; errors in the OpenAI shape."""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import httpx
import openai
import orjson
import pytest

from costplane.money import decimal_to_nano, format_usd

from .conftest import Harness


def expected_nano(model: str, input_tokens: int, output_tokens: int) -> int:
    price = genai_prices.calc_price(genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens),
                                    model, provider_id="azure")
    return decimal_to_nano(Decimal(price.total_price))


def sent_upstream(gw: Harness) -> dict:  # type: ignore[type-arg]
    recent = httpx.get(f"{gw.simulator_url}/_simulator/requests?limit=1").json()["requests"]
    return recent[-1]  # type: ignore[no-any-return]


def test_azure_chat_plain_is_priced_by_the_deployments_model(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.azure(gw.key(team="ml"))
    raw = client.chat.completions.with_raw_response.create(
        model="prod-mini", messages=[{"role": "user", "content": "Two lines on cloud spend."}], max_tokens=40)
    completion = raw.parse()
    assert completion.usage is not None
    event = gw.app.store.list_events()[-1]
    want = expected_nano("gpt-4o-mini", completion.usage.prompt_tokens, completion.usage.completion_tokens)
    assert event.cost_nano == want and raw.headers["x-costplane-cost-usd"] == format_usd(want)
    assert (event.model, event.requested_model, event.provider) == ("gpt-4o-mini", "prod-mini", "azure")
    upstream = sent_upstream(gw)
    assert upstream["path"] == "/openai/deployments/prod-mini/chat/completions"
    assert upstream["headers"]["api-key"] == "***" and upstream["body"]["model"] == "prod-mini"
    assert upstream["body"]["max_tokens"] == 40
    assert gw.app.store.open_reservations() == 0


def test_azure_chat_stream_is_metered_from_its_usage(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    client = gw.azure(gw.key())
    chunks = list(client.chat.completions.create(
        model="prod-4o", messages=[{"role": "user", "content": "A haiku about invoices."}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert all(c.usage is None for c in chunks)  # the usage chunk the gateway asked for is not relayed
    event = gw.app.store.list_events()[-1]
    assert event.status == "ok" and event.model == "gpt-4o" and event.usage.output_tokens > 0
    assert event.cost_nano == expected_nano("gpt-4o", event.usage.input_tokens, event.usage.output_tokens)
    assert sent_upstream(gw)["body"]["stream_options"] == {"include_usage": True}


def test_azure_v1_path_and_embeddings(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    key = gw.key()
    v1 = openai.OpenAI(base_url=f"{gw.url}/openai/v1", api_key=key, max_retries=0, timeout=20)
    reply = v1.chat.completions.create(model="prod-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    upstream = sent_upstream(gw)
    assert upstream["path"] == "/openai/v1/chat/completions" and upstream["body"]["model"] == "prod-mini"
    vectors = gw.azure(key).embeddings.create(model="embed-small", input=["a", "b"])
    assert len(vectors.data) == 2
    event = next(e for e in gw.app.store.list_events() if e.endpoint == "embeddings")
    assert event.model == "text-embedding-3-small" and event.cost_nano > 0


def test_azure_errors_are_in_the_openai_shape_and_name_the_field(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway()
    key = gw.key()
    with pytest.raises(openai.AuthenticationError):
        gw.azure("cpk_not_a_key").chat.completions.create(model="prod-mini",
                                                          messages=[{"role": "user", "content": "x"}])
    missing = httpx.post(f"{gw.url}/openai/deployments/prod-mini/chat/completions", headers={"api-key": key},
                         json={"messages": [{"role": "user", "content": "x"}]})
    assert missing.status_code == 400
    assert orjson.loads(missing.content)["error"]["param"] == "api-version"
    unknown = httpx.post(f"{gw.url}/openai/deployments/nope/chat/completions?api-version=2024-10-21",
                         headers={"api-key": key}, json={"messages": [{"role": "user", "content": "x"}]})
    assert unknown.status_code in (400, 404) and orjson.loads(unknown.content)["error"]["code"] == "model_not_found"
    stray = httpx.get(f"{gw.url}/openai/deployments/prod-mini/completions", headers={"api-key": key})
    assert stray.status_code == 404
    error = orjson.loads(stray.content)["error"]
    assert "POST /openai/deployments/{deployment}/chat/completions" in error["message"]
    assert gw.app.store.list_events() == []


DEGRADE_BY_MODEL = """
kind: Budget
name: finance-degrade
scope: ctx.team == "finance"
amount: 0.0001 USD
window: {rolling: 1h}
on_exceed: {route: gpt-4o-mini}
"""


def test_a_route_by_model_name_reaches_the_deployment_of_that_model(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(DEGRADE_BY_MODEL)
    client = gw.azure(gw.key(team="finance"))
    raw = client.chat.completions.with_raw_response.create(
        model="prod-4o", messages=[{"role": "user", "content": "Two lines on cloud spend."}], max_tokens=50)
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-costplane-effect"] == "route" and raw.headers["x-costplane-model"] == "gpt-4o-mini"
    assert sent_upstream(gw)["path"] == "/openai/deployments/prod-mini/chat/completions"
    event = gw.app.store.list_events()[-1]
    assert (event.model, event.requested_model) == ("gpt-4o-mini", "prod-4o")
