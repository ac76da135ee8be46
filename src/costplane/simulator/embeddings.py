"""OpenAI-compatible `POST /v1/embeddings`: deterministic unit vectors."""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from typing import Any

import orjson
from starlette.responses import Response

from costplane.simulator.endpoint import Call, json_response
from costplane.simulator.errors import InvalidRequest
from costplane.simulator.faults import CutResponse
from costplane.simulator.tokens import count_tokens

__all__ = ["MAX_EMBEDDING_INPUTS", "embedding_vector", "embeddings", "native_dimensions"]

#: Most inputs one embeddings request may carry (as OpenAI).
MAX_EMBEDDING_INPUTS = 2048


def native_dimensions(model: str) -> int:
    """Default vector size of an embedding model."""
    return 3072 if "large" in model else 1536


def embedding_vector(model: str, key: str, dimensions: int) -> list[float]:
    """A deterministic unit vector of `dimensions` floats for `key` under `model`."""
    raw = hashlib.shake_256(f"{model}\x00{key}".encode()).digest(2 * dimensions)
    values = array("h", raw)
    if sys.byteorder == "big":
        values.byteswap()
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _inputs(value: object) -> list[tuple[str, int]]:
    """(vector key, token count) of every input: strings, token arrays or lists of either."""
    if isinstance(value, str):
        items: list[object] = [value]
    elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        items = [value]
    elif isinstance(value, list) and value:
        items = value
    else:
        raise InvalidRequest("'input' must be a non-empty string, array of strings or array of token arrays.",
                             param="input", code="invalid_value")
    if len(items) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(f"'input' holds more than {MAX_EMBEDDING_INPUTS} items.", param="input")
    out: list[tuple[str, int]] = []
    for item in items:
        if isinstance(item, str) and item:
            out.append((item, count_tokens(item)))
        elif (isinstance(item, list) and item
              and all(isinstance(t, int) and not isinstance(t, bool) for t in item)):
            out.append(("\x00tokens:" + ",".join(map(str, item)), len(item)))
        else:
            raise InvalidRequest("'input' items must be non-empty strings or non-empty token arrays.",
                                 param="input", code="invalid_value")
    return out


def embeddings(call: Call) -> Response:
    body = call.body
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter")
    if "input" not in body:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input",
                             code="missing_required_parameter")
    inputs = _inputs(body["input"])
    native = native_dimensions(model)
    dimensions = body.get("dimensions")
    if dimensions is None:
        dimensions = native
    elif not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= native:
        raise InvalidRequest(f"'dimensions' must be an integer within [1, {native}] for {model}.",
                             param="dimensions", code="invalid_value")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'.", param="encoding_format",
                             code="invalid_value")
    data: list[dict[str, Any]] = []
    for index, (key, _) in enumerate(inputs):
        vector = embedding_vector(model, key, dimensions)
        encoded: object = vector
        if encoding == "base64":
            packed = array("f", vector)
            if sys.byteorder == "big":
                packed.byteswap()
            encoded = base64.b64encode(packed.tobytes()).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(count for _, count in inputs)
    payload = {"object": "list", "data": data, "model": model,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    if call.cut:
        return CutResponse(orjson.dumps(payload))
    return json_response(payload, headers={"x-request-id": call.request_id()})

