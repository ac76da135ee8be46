"""The bare Python floor for the gateway benchmark: a minimal Starlette + aiohttp reverse proxy.

    .venv/bin/python benchmarks/passthrough.py --port 9001 --upstream http://127.0.0.1:9000

It forwards every POST under /v1/ to the upstream simulator and returns its status, body and
content type, and nothing else: no auth, no policy, no budget, no metering, no logging. Options
swap one piece of the hot path at a time, so each piece's CPU per request can be measured
against the same floor (`bench_gateway.py --variants`):

* `--server uvicorn|granian` — the HTTP server (granian is not a project dependency: run this
  script with an interpreter that has it, e.g. a throw-away venv);
* `--client aiohttp|httpx` — the upstream HTTP client;
* `--router starlette|asgi` — Starlette's Router and Request/Response, or a plain ASGI callable
  that matches the path itself;
* `--json none|stdlib|orjson` — none forwards the bytes; otherwise the request is decoded and
  re-encoded (as the gateway does when a policy mutates it) and the response decoded (as the
  gateway reads its usage);
* `--headers minimal|copy` — answer with the content type only, or copy the upstream's headers
  (less hop-by-hop ones) as a transparent proxy does.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

__all__ = ["build_app", "granian_app", "main"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ENV = "COSTPLANE_PASSTHROUGH"
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"})


def _codec(kind: str) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]] | None:
    if kind == "none":
        return None
    if kind == "orjson":
        import orjson

        return orjson.loads, orjson.dumps
    return json.loads, lambda value: json.dumps(value, separators=(",", ":")).encode()


class Upstream:
    """One pooled upstream client (aiohttp or httpx), opened on startup, closed on shutdown."""

    def __init__(self, base: str, kind: str) -> None:
        self.base = base.rstrip("/")
        self.kind = kind
        self._client: Any = None

    async def open(self) -> None:
        if self.kind == "aiohttp":
            import aiohttp

            self._client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                                 auto_decompress=False)
        else:
            import httpx

            self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=None,
                                                                 max_keepalive_connections=256))

    async def close(self) -> None:
        if self.kind == "aiohttp":
            await self._client.close()
        else:
            await self._client.aclose()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, list[tuple[str, str]]]:
        url = self.base + path
        if self.kind == "aiohttp":
            async with self._client.post(url, data=body, headers=headers) as resp:
                data = await resp.read()
                return resp.status, data, list(resp.headers.items())
        resp = await self._client.post(url, content=body, headers=headers)
        return resp.status_code, resp.content, list(resp.headers.items())


def _forward_headers(items: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request headers an upstream needs (content type and authorization)."""
    out = {"content-type": "application/json"}
    for name, value in items:
        if name == b"authorization":
            out["authorization"] = value.decode("latin-1")
    return out


def _answer_headers(upstream: list[tuple[str, str]], mode: str) -> list[tuple[str, str]]:
    if mode == "copy":
        return [(k.lower(), v) for k, v in upstream if k.lower() not in _HOP]
    ctype = next((v for k, v in upstream if k.lower() == "content-type"), "application/json")
    return [("content-type", ctype)]


async def _proxy(upstream: Upstream, path: str, body: bytes, headers: dict[str, str],
                 codec: tuple[Callable[[bytes], Any], Callable[[Any], bytes]] | None,
                 header_mode: str) -> tuple[int, bytes, list[tuple[str, str]]]:
    if codec is not None:
        loads, dumps = codec
        request = loads(body)
        request["model"] = str(request.get("model", ""))  # read and write one field, like a route
        body = dumps(request)
    status, data, upstream_headers = await upstream.post(path, body, headers)
    if codec is not None and status == 200:
        usage = codec[0](data).get("usage") or {}
        _ = int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
    return status, data, _answer_headers(upstream_headers, header_mode)


def build_app(upstream_url: str, *, client: str = "aiohttp", router: str = "starlette", json_mode: str = "none",
              headers: str = "minimal") -> ASGIApp:
    upstream = Upstream(upstream_url, client)
    codec = _codec(json_mode)
    if router == "asgi":
        return _asgi_app(upstream, codec, headers)

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def handle(request: Request) -> Response:
        status, data, answer = await _proxy(upstream, request.url.path, await request.body(),
                                            _forward_headers(request.headers.raw), codec, headers)
        return Response(data, status_code=status, headers=dict(answer))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await upstream.open()
        yield
        await upstream.close()

    return Starlette(routes=[Route("/v1/{rest:path}", handle, methods=["POST"])], lifespan=lifespan)


def _asgi_app(upstream: Upstream, codec: tuple[Callable[[bytes], Any], Callable[[Any], bytes]] | None,
              header_mode: str) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await upstream.open()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await upstream.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope["path"]
        if scope["type"] != "http" or scope["method"] != "POST" or not path.startswith("/v1/"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        status, data, answer = await _proxy(upstream, path, b"".join(chunks), _forward_headers(scope["headers"]),
                                            codec, header_mode)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer]
        raw.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": data})

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the upstream, e.g. http://127.0.0.1:9000")
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    parser.add_argument("--router", choices=("starlette", "asgi"), default="starlette")
    parser.add_argument("--json", dest="json_mode", choices=("none", "stdlib", "orjson"), default="none")
    parser.add_argument("--headers", choices=("minimal", "copy"), default="minimal")
    args = parser.parse_args(argv)
    app = build_app(args.upstream, client=args.client, router=args.router, json_mode=args.json_mode,
                    headers=args.headers)
    if args.server == "uvicorn":
        import uvicorn

        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
        return
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    # granian imports its target in its worker: the factory rebuilds the app from these options
    os.environ[_ENV] = json.dumps({"upstream_url": args.upstream, "client": args.client, "router": args.router,
                                   "json_mode": args.json_mode, "headers": args.headers})
    Server("passthrough:granian_app", address=args.host, port=args.port, interface=Interfaces.ASGI, workers=1,
           loop=Loops.auto, log_access=False, factory=True,
           working_dir=Path(__file__).resolve().parent).serve()


def granian_app() -> ASGIApp:
    """The app granian's worker builds (`main --server granian`)."""
    options = json.loads(os.environ[_ENV])
    upstream = options.pop("upstream_url")
    return build_app(upstream, **options)

if __name__ == "__main__":
    main()
