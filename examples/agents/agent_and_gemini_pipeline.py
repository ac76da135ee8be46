"""An openai-agents agent and a google-genai pipeline, both through the costplane gateway.

The agent runs on the SDK's default model (the Responses API) with one function tool; the pipeline
embeds a document with Gemini and summarises it. Both send their attribution (run, step, pipeline)
as headers, and read what each call cost from the gateway's response headers. Offline:

    costplane simulate-upstream --port 9001 &
    costplane serve --config examples/costplane.yaml &
    costplane keys create --name agents --team support --tier production --config examples/costplane.yaml
    python examples/agents/agent_and_gemini_pipeline.py --gateway http://127.0.0.1:8080 --key cpk_…
    costplane runs show order-bot-1 --config examples/costplane.yaml

(`costplane demo --keep-serving` prints a gateway and a key to use instead.)
"""

from __future__ import annotations

import argparse
import asyncio

import openai
from agents import Agent, ModelSettings, OpenAIProvider, RunConfig, Runner, function_tool
from google import genai
from google.genai import types

__all__ = ["enrich_document", "order_agent", "run_order_agent"]


@function_tool
def order_status(order_id: str) -> str:
    """The shipping status of an order, from the order system."""
    return {"A-1001": "shipped on Monday, arriving Thursday"}.get(order_id.strip().upper(), "unknown order")


def order_agent() -> Agent:
    # no model: the SDK's default, which calls the Responses API
    return Agent(name="order-bot", instructions="Answer questions about orders; look them up with the tool.",
                 tools=[order_status])


async def run_order_agent(gateway: str, key: str, question: str, run: str) -> str:
    """One agent run through the gateway; the client is passed in the run config (no process-wide default)."""
    client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)
    config = RunConfig(model_provider=OpenAIProvider(openai_client=client, use_responses=True),
                       model_settings=ModelSettings(max_tokens=300, extra_headers={
                           "x-costplane-run": run, "x-costplane-agent": "order-bot"}),
                       tracing_disabled=True)  # traces stay here: the gateway meters each model step
    try:
        result = await Runner.run(order_agent(), question, run_config=config)
    finally:
        await client.close()
    return str(result.final_output)


def enrich_document(gateway: str, key: str, text: str, run: str) -> tuple[int, str, str]:
    """Embed then summarise one document with Gemini: (dimensions, summary, cost of the summary in USD)."""
    client = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=gateway, headers={
        "x-costplane-pipeline": "doc-enrich", "x-costplane-run": run}))
    embedded = client.models.embed_content(
        model="gemini-embedding-001", contents=[text],
        config=types.EmbedContentConfig(http_options=types.HttpOptions(headers={"x-costplane-step": "embed"})))
    summary = client.models.generate_content(
        model="gemini-2.5-flash", contents=f"Summarise the obligations in: {text}",
        config=types.GenerateContentConfig(max_output_tokens=256,
                                           http_options=types.HttpOptions(headers={"x-costplane-step": "summarise"})))
    http = summary.sdk_http_response
    cost = (http.headers or {}).get("x-costplane-cost-usd", "?") if http is not None else "?"
    vectors = embedded.embeddings or []
    return len(vectors[0].values or []) if vectors else 0, summary.text or "", cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="the costplane gateway's base URL")
    parser.add_argument("--key", required=True, help="a costplane key (cpk_…)")
    args = parser.parse_args()
    answer = asyncio.run(run_order_agent(args.gateway, args.key, "Where is my order A-1001?", "order-bot-1"))
    print(f"agent: {answer}")
    dimensions, summary, cost = enrich_document(
        args.gateway, args.key, "The supplier delivers 400 units by 1 March; late delivery costs 2% a week.",
        "doc-enrich-1")
    print(f"pipeline: {dimensions}-dimensional embedding; summary ({cost} USD): {summary}")


if __name__ == "__main__":
    main()
