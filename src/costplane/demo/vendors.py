"""The demo's 2026 clients: an `openai-agents` agent (Responses API), `google-genai` (Gemini),
`boto3` (Bedrock Converse) and `openai.AsyncAzureOpenAI`, each through the gateway.

Every call goes through `Clients.bounded` (a concurrency slot, a deadline, tallied). A denial is an
`Outcome` carrying the gateway's `x-costplane-error-code` and the message the client received.
The synchronous boto3 client runs in a worker thread; its per-call attribution headers are added
by a `before-sign` event handler reading a context variable of this object (set per call).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import boto3  # type: ignore[import-untyped]
import httpx
import httpx2
import openai
from agents import Agent, AgentsException, ModelSettings, OpenAIProvider, RunConfig, Runner, function_tool
from agents.models.default_models import get_default_model
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from costplane.demo.calls import Clients, Headers, Outcome, from_error, from_headers

__all__ = ["AZURE_API_VERSION", "AZURE_DEPLOYMENTS", "VendorClients", "concierge_agent"]

#: The demo's Azure OpenAI deployments: deployment name -> model (the provider's `deployments`).
AZURE_DEPLOYMENTS: Mapping[str, str] = {"invoices-4o": "gpt-4o", "invoices-mini": "gpt-4o-mini"}
AZURE_API_VERSION = "2024-10-21"

#: Order status the concierge's tool looks up (a scripted back office).
_ORDERS = {"A-1001": "shipped on Monday, arriving Thursday", "A-1002": "waiting for payment",
           "A-1003": "delivered to the parcel locker", "A-1004": "returned to the warehouse"}


@function_tool
def order_status(order_id: str) -> str:
    """The shipping status of an order, from the order system."""
    return _ORDERS.get(order_id.strip().upper(), "no order with that id")


def concierge_agent() -> Agent[Any]:
    """A customer concierge with one function tool, on the SDK's default model (Responses API)."""
    return Agent(name="concierge", instructions="Answer questions about orders; look the order up with the tool.",
                 tools=[order_status])


def _from_response(response: httpx2.Response, body: bytes) -> Outcome:
    """An OpenAI-shaped response seen by the agent's HTTP client: served, or denied with its message."""
    headers = response.headers
    if response.status_code < 400:
        return from_headers(response.status_code, headers)
    message = body.decode("utf-8", "replace")
    try:
        detail = json.loads(body)["error"]
        message = str(detail.get("message") or message)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    code = headers.get("x-costplane-error-code") or f"http_{response.status_code}"
    return Outcome(False, response.status_code, code, message)


def _boto_outcome(reply: Mapping[str, Any]) -> Outcome:
    meta = reply.get("ResponseMetadata", {})
    return from_headers(int(meta.get("HTTPStatusCode", 200)), meta.get("HTTPHeaders", {}))


class VendorClients:
    """Per persona key: the agent's Responses client, a Gemini client, a Bedrock client, an Azure client."""

    def __init__(self, base: Clients, gateway_url: str, keys: Mapping[str, str], uses: Mapping[str, Sequence[str]],
                 *, timeout_s: float = 30.0) -> None:
        """`uses`: client kind (agents, gemini, bedrock, azure) -> the personas that call with it."""
        self._base = base
        self._timeout = timeout_s
        self._model = get_default_model()
        self._boto_headers: contextvars.ContextVar[Headers | None] = contextvars.ContextVar("boto_headers",
                                                                                          default=None)

        def personas(kind: str) -> dict[str, str]:
            return {p: keys[p] for p in uses.get(kind, ())}

        self._agent_http = {p: openai.DefaultAsyncHttpxClient(timeout=timeout_s,
                                                              event_hooks={"response": [self._hook(p)]})
                            for p in personas("agents")}
        self._responses = {p: openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=k, max_retries=0,
                                                 timeout=timeout_s, http_client=self._agent_http[p])
                           for p, k in personas("agents").items()}
        options = genai_types.HttpOptions(base_url=gateway_url, timeout=int(timeout_s * 1000),
                                          retry_options=genai_types.HttpRetryOptions(attempts=1))
        self._gemini = {p: genai.Client(api_key=k, http_options=options) for p, k in personas("gemini").items()}
        self._azure = {p: openai.AsyncAzureOpenAI(azure_endpoint=gateway_url, api_key=k, api_version=AZURE_API_VERSION,
                                                  max_retries=0, timeout=timeout_s)
                       for p, k in personas("azure").items()}
        # Over plain HTTP boto3 signs with SigV4: the costplane key is access key id and secret alike.
        session = boto3.session.Session()
        self._bedrock = {p: session.client("bedrock-runtime", region_name="us-east-1", endpoint_url=gateway_url,
                                           aws_access_key_id=k, aws_secret_access_key=k,
                                           config=Config(signature_version="v4", retries={"max_attempts": 1},
                                                         read_timeout=timeout_s, connect_timeout=5))
                         for p, k in personas("bedrock").items()}
        for client in self._bedrock.values():
            client.meta.events.register("before-sign.bedrock-runtime.*", self._add_headers)

    def _add_headers(self, request: Any, **_: Any) -> None:
        for name, value in (self._boto_headers.get() or {}).items():
            request.headers[name] = value

    def _hook(self, persona: str) -> Any:
        async def record(response: httpx2.Response) -> None:
            body = await response.aread() if response.status_code >= 400 else b""
            self._base.tally.record(persona, _from_response(response, body))
        return record

    async def close(self) -> None:
        for client in self._responses.values():
            await client.close()
        for http in self._agent_http.values():
            await http.aclose()
        for azure in self._azure.values():
            await azure.close()
        for gemini in self._gemini.values():
            await gemini.aio.aclose()
            gemini.close()
        for bedrock in self._bedrock.values():
            bedrock.close()

    # -- openai-agents: one agent run, each model step tallied by the HTTP client's hook ------------
    async def agent_run(self, persona: str, question: str, headers: Headers, *, max_tokens: int) -> Outcome:
        """Run the concierge agent once; the outcome of its last model step (a denial stops the run)."""
        config = RunConfig(model_provider=OpenAIProvider(openai_client=self._responses[persona], use_responses=True),
                           model_settings=ModelSettings(max_tokens=max_tokens, extra_headers=dict(headers)),
                           tracing_disabled=True)

        async def send() -> Outcome:
            try:
                result = await Runner.run(concierge_agent(), question, run_config=config, max_turns=4)
            except openai.APIStatusError as exc:
                return from_error(exc)  # already tallied by the hook, as the response arrived
            except AgentsException as exc:  # the agent itself failed (e.g. too many turns): counted here
                return Outcome(False, 0, type(exc).__name__, str(exc))
            return Outcome(True, 200, model=self._model) if result.final_output else Outcome(False, 200, "no_answer")

        return await self._base.bounded(persona, send, tally=False)

    # -- google-genai ------------------------------------------------------------------------------
    async def gemini_generate(self, persona: str, model: str, prompt: str, headers: Headers, *,
                              max_tokens: int | None = None, stream: bool = False) -> Outcome:
        config = genai_types.GenerateContentConfig(max_output_tokens=max_tokens,
                                                   http_options=genai_types.HttpOptions(headers=dict(headers)))
        models = self._gemini[persona].aio.models

        async def send() -> Outcome:
            try:
                if stream:
                    last: Any = None
                    async for chunk in await models.generate_content_stream(model=model, contents=prompt,
                                                                             config=config):
                        last = chunk
                    return self._genai_outcome(last)
                return self._genai_outcome(await models.generate_content(model=model, contents=prompt, config=config))
            except genai_errors.APIError as exc:
                return self._genai_error(exc)
            except (aiohttp.ClientError, httpx.HTTPError, httpx2.HTTPError, OSError) as exc:
                return Outcome(False, 0, "connection_error", str(exc))

        return await self._base.bounded(persona, send)

    async def gemini_embed(self, persona: str, model: str, texts: Sequence[str], headers: Headers) -> Outcome:
        config = genai_types.EmbedContentConfig(http_options=genai_types.HttpOptions(headers=dict(headers)))
        models = self._gemini[persona].aio.models

        async def send() -> Outcome:
            try:
                return self._genai_outcome(await models.embed_content(model=model, contents=list(texts),
                                                                      config=config))
            except genai_errors.APIError as exc:
                return self._genai_error(exc)
            except (aiohttp.ClientError, httpx.HTTPError, httpx2.HTTPError, OSError) as exc:
                return Outcome(False, 0, "connection_error", str(exc))

        return await self._base.bounded(persona, send)

    @staticmethod
    def _genai_outcome(response: Any) -> Outcome:
        http = getattr(response, "sdk_http_response", None)
        headers: Mapping[str, str] = (http.headers if http is not None else None) or {}
        return from_headers(200, headers)

    @staticmethod
    def _genai_error(exc: genai_errors.APIError) -> Outcome:
        response: Any = exc.response
        headers = getattr(response, "headers", None) or {}
        code = headers.get("x-costplane-error-code") or exc.status or f"http_{exc.code}"
        return Outcome(False, int(exc.code), str(code), str(exc.message or exc))

    # -- boto3 bedrock-runtime Converse (in a worker thread) ----------------------------------------
    async def converse(self, persona: str, model_id: str, prompt: str, headers: Headers, *,
                       max_tokens: int, system: str | None = None) -> Outcome:
        client = self._bedrock[persona]
        request: dict[str, Any] = {"modelId": model_id, "inferenceConfig": {"maxTokens": max_tokens},
                                   "messages": [{"role": "user", "content": [{"text": prompt}]}]}
        if system is not None:
            request["system"] = [{"text": system}]

        def call() -> Outcome:
            self._boto_headers.set(dict(headers))  # this worker's copy of the context
            try:
                return _boto_outcome(client.converse(**request))
            except ClientError as exc:
                meta = exc.response.get("ResponseMetadata", {})
                error = exc.response.get("Error", {})
                sent = meta.get("HTTPHeaders", {})
                code = sent.get("x-costplane-error-code") or error.get("Code") or "ClientError"
                return Outcome(False, int(meta.get("HTTPStatusCode", 0)), str(code), str(error.get("Message", exc)))
            except BotoCoreError as exc:
                return Outcome(False, 0, "connection_error", str(exc))

        async def send() -> Outcome:
            return await asyncio.to_thread(call)

        return await self._base.bounded(persona, send)

    # -- openai.AsyncAzureOpenAI: a deployment path with api-version -------------------------------
    async def azure_chat(self, persona: str, deployment: str, prompt: str, headers: Headers, *,
                         max_tokens: int, stream: bool = False) -> Outcome:
        return await self._base.chat(persona, deployment, prompt, headers, max_tokens=max_tokens, stream=stream,
                                     client=self._azure[persona])
