"""Azure OpenAI paths: the deployment paths and the v1 paths, answered by the OpenAI handlers.

Routes::

    POST /openai/deployments/{deployment}/chat/completions?api-version=…   (plain / SSE)
    POST /openai/deployments/{deployment}/embeddings?api-version=…
    POST /openai/v1/chat/completions                                       (model: the deployment)
    POST /openai/v1/embeddings

A deployment path requires `api-version` and answers with the deployment as the model; every path
requires a credential (`api-key` header or a bearer token), as Azure does.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from costplane.simulator import embeddings, openai_api
from costplane.simulator.endpoint import Call, Handler, endpoint
from costplane.simulator.errors import InvalidRequest
from costplane.simulator.state import SimulatorState

__all__ = ["azure_routes"]


def _authorised(call: Call) -> None:
    auth = call.request.headers.get("authorization", "")
    if not call.request.headers.get("api-key") and not auth.lower().startswith("bearer "):
        raise InvalidRequest("Access denied due to missing subscription key. Make sure to include the api-key "
                             "header when making API calls.", status=401, code="401")


def _deployment(handler: Handler) -> Handler:
    def run(call: Call) -> Response:
        _authorised(call)
        if not call.request.query_params.get("api-version"):
            raise InvalidRequest("Missing required query parameter: api-version", param="api-version",
                                 code="missing_required_parameter")
        call.body = {**call.body, "model": str(call.request.path_params["deployment"])}
        return handler(call)

    return run


def _v1(handler: Handler) -> Handler:
    def run(call: Call) -> Response:
        _authorised(call)
        return handler(call)

    return run


def azure_routes(state: SimulatorState) -> list[Route]:
    return [
        Route("/openai/deployments/{deployment}/chat/completions",
              endpoint(state, "openai", _deployment(openai_api.chat_completions)), methods=["POST"]),
        Route("/openai/deployments/{deployment}/embeddings",
              endpoint(state, "openai", _deployment(embeddings.embeddings)), methods=["POST"]),
        Route("/openai/v1/chat/completions", endpoint(state, "openai", _v1(openai_api.chat_completions)),
              methods=["POST"]),
        Route("/openai/v1/embeddings", endpoint(state, "openai", _v1(embeddings.embeddings)), methods=["POST"]),
    ]
