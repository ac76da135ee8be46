"""A local stand-in for the OpenAI and Anthropic admin APIs (and a webhook receiver), on 127.0.0.1.

Serves the hand-written bills of data/ page by page, following `page=<next_page>`, and refuses a request
without the admin key header each API documents. Every request is recorded for the test to inspect.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from reconcile_seed import DATA

__all__ = ["FakeApi", "fake_api"]

OPENAI_KEY = "sk-admin-test-openai"
ANTHROPIC_KEY = "sk-ant-admin01-test"


def _split(report: dict[str, Any], token: str) -> list[dict[str, Any]]:
    """A one-page report as two pages (one bucket each), the first pointing at the second."""
    first, second = copy.deepcopy(report), copy.deepcopy(report)
    first["data"], second["data"] = report["data"][:1], report["data"][1:]
    first["has_more"], first["next_page"] = True, token
    second["has_more"], second["next_page"] = False, None
    return [first, second]


def _pages() -> dict[str, list[dict[str, Any]]]:
    def load(name: str) -> Any:
        return json.loads((DATA / name).read_text())

    return {
        "/v1/organization/costs": load("openai_costs.json"),
        "/v1/organization/usage/completions": [load("openai_usage.json")],
        "/v1/organizations/cost_report": _split(load("anthropic_cost_report.json"), "page_MjAyNi0xMS0wMw=="),
        "/v1/organizations/usage_report/messages": [load("anthropic_usage_report.json")],
    }


@dataclass
class FakeApi:
    port: int = 0
    requests: list[tuple[str, list[tuple[str, str]], dict[str, str]]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    pages: dict[str, list[dict[str, Any]]] = field(default_factory=_pages)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def report(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, list(request.query.items()), dict(request.headers)))
        openai = request.path.startswith("/v1/organization/")
        if openai and request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return web.json_response({"error": {"message": "Invalid admin key"}}, status=401)
        if not openai and (request.headers.get("x-api-key") != ANTHROPIC_KEY
                           or request.headers.get("anthropic-version") != "2023-06-01"):
            return web.json_response({"type": "error", "error": {"type": "authentication_error"}}, status=401)
        pages = self.pages[request.path]
        token = request.query.get("page")
        index = 0 if token is None else 1 + [p.get("next_page") for p in pages].index(token)
        return web.json_response(pages[index])

    async def hook(self, request: web.Request) -> web.Response:
        self.hooks.append(await request.json())
        return web.Response(text="ok")


@contextmanager
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    app = web.Application()
    for path in api.pages:
        app.router.add_get(path, api.report)
    app.router.add_post("/hook", api.hook)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        api.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the fake admin API did not start")
    try:
        yield api
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
