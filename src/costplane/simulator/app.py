"""`create_app(config)`: the simulator's Starlette application.

Routes::

    POST /v1/chat/completions        OpenAI chat completions (plain / SSE)
    POST /v1/embeddings              OpenAI embeddings
    GET  /v1/models                  model list (Anthropic's shape when `anthropic-version` is sent)
    POST /v1/messages                Anthropic messages (plain / SSE)
    POST /v1/messages/count_tokens   Anthropic token counting
    POST /openai/deployments/{deployment}/chat/completions|embeddings, /openai/v1/…   Azure OpenAI
    GET  /health                     liveness
    GET  /_simulator/stats           request / fault counters
    GET  /_simulator/requests        the most recent requests (credentials redacted)
    POST /_simulator/reset           forget counters, cached prefixes and recorded requests

All state lives in the `SimulatorState` at `app.state.simulator` (see `simulator_state`).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from costplane.simulator import anthropic_api, bedrock_api, embeddings, openai_api
from costplane.simulator.azure_api import azure_routes
from costplane.simulator.config import SimulatorConfig
from costplane.simulator.endpoint import endpoint, json_response
from costplane.simulator.errors import anthropic_error, openai_error
from costplane.simulator.gemini_api import routes as gemini_routes
from costplane.simulator.responses_api import routes as responses_routes
from costplane.simulator.state import SimulatorState

__all__ = ["create_app", "simulator_state"]


def simulator_state(app: Starlette) -> SimulatorState:
    """The state of an app made by `create_app`."""
    state = app.state.simulator
    assert isinstance(state, SimulatorState)
    return state


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """A new simulator application with its own state."""
    state = SimulatorState(config or SimulatorConfig())

    async def health(request: Request) -> Response:
        return json_response({"status": "ok", "simulator": True})

    async def stats(request: Request) -> Response:
        return json_response(state.stats())

    async def recent(request: Request) -> Response:
        limit_text = request.query_params.get("limit", "")
        entries = list(state.recent)
        if limit_text.isdigit():
            entries = entries[-int(limit_text):] if int(limit_text) else []
        return json_response({"requests": entries})

    async def reset(request: Request) -> Response:
        state.reset()
        return json_response({"reset": True})

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = f"Unknown request URL: {request.method} {request.url.path}." if status == 404 else str(exc)
        if "anthropic-version" in request.headers or request.url.path.startswith("/v1/messages"):
            return anthropic_error(status, message)
        return openai_error(status, message)

    routes = [
        Route("/v1/chat/completions", endpoint(state, "openai", openai_api.chat_completions),
              methods=["POST"]),
        Route("/v1/embeddings", endpoint(state, "openai", embeddings.embeddings), methods=["POST"]),
        Route("/v1/models", endpoint(state, "openai", openai_api.list_models, draws_faults=False),
              methods=["GET"]),
        Route("/v1/messages", endpoint(state, "anthropic", anthropic_api.messages), methods=["POST"]),
        Route("/v1/messages/count_tokens",
              endpoint(state, "anthropic", anthropic_api.count_message_tokens, draws_faults=False),
              methods=["POST"]),
        *responses_routes(state),  # POST /v1/responses, GET/DELETE /v1/responses/{id}, …/cancel
        *azure_routes(state),  # POST /openai/deployments/{deployment}/chat/completions|embeddings, /openai/v1/…
        *gemini_routes(state),  # POST /v1beta/models/{model}:generateContent, …, also under /v1
        *bedrock_api.routes(state),  # POST /model/{modelId}/converse, /converse-stream, /invoke, …
        Route("/health", health, methods=["GET"]),
        Route("/_simulator/stats", stats, methods=["GET"]),
        Route("/_simulator/requests", recent, methods=["GET"]),
        Route("/_simulator/reset", reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: http_error, 405: http_error})
    app.state.simulator = state
    return app
