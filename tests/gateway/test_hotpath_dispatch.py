"""The governed fixed-path routes are dispatched without the router, and nothing else changes:
errors of other methods and paths, the 500 of an unexpected error, middleware added later."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from costplane.gateway.app import GatewayApp
from costplane.gateway.protocols import ADAPTERS
from costplane.gateway.routes import adapter_routes, direct_routes
from costplane.metrics.latency import LatencyHistograms, LatencyMiddleware

from .conftest import Harness

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


async def _never(*args: object) -> Response:
    return Response(b"", status_code=599)


def test_only_governed_fixed_paths_are_dispatched_directly() -> None:
    routes = adapter_routes(ADAPTERS, _never)
    direct = direct_routes(ADAPTERS, routes)
    assert ("POST", "/v1/chat/completions") in direct
    assert ("POST", "/v1/messages") in direct
    assert ("POST", "/v1/embeddings") in direct
    assert all("{" not in path for _, path in direct)  # path parameters stay with the router
    assert ("POST", "/v1/responses/input_tokens") not in direct  # not governed: the router's
    assert all(method == "POST" for method, _ in direct)


def test_a_route_listed_earlier_that_matches_keeps_the_request() -> None:
    async def first(request: Request) -> Response:
        return PlainTextResponse("first")

    routes = [Route("/v1/chat/completions", first, methods=["POST"]), *adapter_routes(ADAPTERS, _never)]
    assert ("POST", "/v1/chat/completions") not in direct_routes(ADAPTERS, routes)


def test_governed_call_errors_and_middleware(make_gateway: Callable[..., Harness]) -> None:
    gateway = make_gateway()
    key = gateway.key(team="web")
    with httpx.Client(base_url=gateway.url, timeout=20) as http:
        ok = http.post("/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"})
        assert ok.status_code == 200, ok.text
        assert ok.headers["x-costplane-decision-id"]
        assert ok.json()["choices"][0]["message"]["content"]
        refused = http.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer cpk_nope"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        wrong_method = http.get("/v1/chat/completions", headers={"authorization": f"Bearer {key}"})
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "POST"
        assert wrong_method.json()["error"]["param"] == "method"
        unknown = http.post("/v1/chat/completion", json=CHAT, headers={"authorization": f"Bearer {key}"})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "unknown_path"
    assert gateway.app.store.count_events() == 1


def _app(endpoint: Callable[[Request], object]) -> GatewayApp:
    async def routed(request: Request) -> Response:
        return PlainTextResponse("routed")

    return GatewayApp({("POST", "/v1/chat/completions"): endpoint},  # type: ignore[dict-item]
                      routes=[Route("/v1/chat/completions", routed, methods=["POST", "GET"])])


def test_unexpected_error_is_a_500_and_middleware_sees_direct_requests() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    app = _app(broken)
    histograms = LatencyHistograms()
    app.add_middleware(LatencyMiddleware, histograms=histograms)
    with TestClient(app, raise_server_exceptions=False) as client:
        failed = client.post("/v1/chat/completions", json=CHAT)
        assert failed.status_code == 500
        assert failed.text == "Internal Server Error"
        assert client.get("/v1/chat/completions").text == "routed"  # another method: the router's
    total = histograms.families()[1]  # time to the last byte, per (path, status class)
    counts = {labels["status"]: int(value) for suffix, labels, value in total.samples if suffix == "_count"}
    assert counts == {"2xx": 1, "5xx": 1}


def test_a_mounted_root_path_goes_to_the_router() -> None:
    async def direct(request: Request) -> Response:
        return PlainTextResponse("direct")

    app = _app(direct)
    with TestClient(app, root_path="/gw") as client:
        assert client.post("/gw/v1/chat/completions", json=CHAT).text == "routed"
    with TestClient(app) as client:
        assert client.post("/v1/chat/completions", json=CHAT).text == "direct"
