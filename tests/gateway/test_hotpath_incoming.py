"""The request the protocol adapters see, read straight off the ASGI scope, is what Starlette's
`url.path`, `path_params`, `query_params` and `headers` would have given."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from costplane.gateway.proxy import _incoming


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _scope(path: str, query: bytes, headers: list[tuple[bytes, bytes]], **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "query_string": query, "root_path": "",
            "headers": headers, **extra}


CASES = [
    _scope("/v1/chat/completions", b"", [(b"host", b"gw"), (b"authorization", b"Bearer cpk_x")]),
    # a repeated header: the first value, as dict(request.headers)
    _scope("/v1/messages", b"", [(b"x-api-key", b"first"), (b"x-api-key", b"second"), (b"anthropic-version", b"1")]),
    # query parameters, repeated ones included (the last wins, as dict(request.query_params))
    _scope("/v1beta/models/gemini-2.0-flash:generateContent", b"key=a&alt=sse&key=b",
           [(b"x-goog-api-key", b"k")], path_params={"model": "gemini-2.0-flash"}),
    # characters the URL escapes: the escaped path, as request.url.path
    _scope("/v1/x?y#z\\w", b"a=%20b", []),
    # a non-ASCII header value (latin-1, as Starlette decodes it)
    _scope("/v1/embeddings", b"", [(b"x-costplane-team", "caf\u00e9".encode("latin-1"))]),
]


@pytest.mark.parametrize("scope", CASES)
def test_incoming_matches_starlette(scope: dict[str, Any]) -> None:
    fast = _incoming(Request(dict(scope), _receive), b"{}")
    request = Request(dict(scope), _receive)
    assert fast.method == request.method
    assert fast.path == request.url.path
    assert fast.path_params == {k: str(v) for k, v in request.path_params.items()}
    assert fast.query == dict(request.query_params)
    assert fast.headers == dict(request.headers)
    assert fast.body == b"{}"


def test_repeated_header_keeps_the_first_value() -> None:
    fast = _incoming(Request(CASES[1], _receive))
    assert fast.headers["x-api-key"] == "first"
