"""OTLP receiver: OpenTelemetry GenAI spans priced, attributed and nested into run trees."""

from costplane.otel.decode import OtlpDecodeError, SpanData, decode_json, decode_protobuf
from costplane.otel.genai import SpanIngest, ingest_spans

__all__ = ["OtlpDecodeError", "SpanData", "SpanIngest", "decode_json", "decode_protobuf", "ingest_spans"]
