"""OTLP receiver: OpenTelemetry GenAI spans priced, attributed and nested into run trees; and the
gateway's own GenAI span export (`otel.export`).

The names below load on first use, so `costplane.config` can import `otel.export_settings`
without pulling in the pricing and ledger modules that themselves import the configuration.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["OtlpDecodeError", "SpanData", "SpanIngest", "decode_json", "decode_protobuf", "ingest_spans"]

_WHERE = {"OtlpDecodeError": "decode", "SpanData": "decode", "decode_json": "decode", "decode_protobuf": "decode",
          "SpanIngest": "genai", "ingest_spans": "genai"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'costplane.otel' has no attribute {name!r}")
    return getattr(importlib.import_module(f"costplane.otel.{module}"), name)
