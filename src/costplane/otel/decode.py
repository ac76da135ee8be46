"""OTLP/HTTP trace payloads (protobuf and JSON) → flat `SpanData` records.

Protobuf is parsed with `opentelemetry-proto`. JSON follows the OTLP/JSON mapping:
camelCase or snake_case field names, trace and span ids as hex strings, 64-bit integers
as strings or numbers, AnyValue as `{"stringValue": …}` / `{"intValue": …}` / ….
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from costplane.otel.aliases import normalise

__all__ = ["OtlpDecodeError", "SpanData", "decode_json", "decode_protobuf"]

Attributes = dict[str, Any]


class OtlpDecodeError(ValueError):
    """A payload that is not a valid OTLP ExportTraceServiceRequest; the message says where."""


@dataclass(frozen=True, slots=True)
class SpanData:
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent_span_id: str  # "" for a root span
    name: str
    start_ns: int
    end_ns: int
    error: bool  # status code ERROR
    attributes: Attributes
    resource: Attributes  # resource attributes (service.name, …), shared by the resource's spans
    normalised: bool = False  # attribute names already canonical (genai.normalise): the decoders do it


def _any_pb(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_pb(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_pb(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _attrs_pb(items: Any) -> Attributes:
    out: Attributes = {}
    for kv in items:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            out[kv.key] = value.string_value
        elif kind == "int_value":
            out[kv.key] = value.int_value
        else:
            out[kv.key] = _any_pb(value)
    return out


#: span-event attributes that carry captured content (semconv 1.26-1.36 put prompts and completions on
#: events `gen_ai.content.prompt` / `gen_ai.content.completion`; later ones on
#: `gen_ai.client.inference.operation.details`): merged into the span's attributes, the span's own win
_EVENT_CONTENT = frozenset({"gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages",
                           "gen_ai.system_instructions"})


def _merge_events(attrs: Attributes, events: list[Attributes]) -> Attributes:
    for event in events:
        for key, value in event.items():
            if key in _EVENT_CONTENT:
                attrs.setdefault(key, value)
    return attrs


def decode_protobuf(body: bytes) -> list[SpanData]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # google.protobuf.message.DecodeError (untyped package)
        raise OtlpDecodeError(f"body is not an OTLP ExportTraceServiceRequest protobuf: {exc}") from None
    spans: list[SpanData] = []
    for resource_spans in request.resource_spans:
        resource = _attrs_pb(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(SpanData(
                    span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.name,
                    span.start_time_unix_nano, span.end_time_unix_nano, span.status.code == 2,
                    normalise(_merge_events(_attrs_pb(span.attributes),
                                            [_attrs_pb(e.attributes) for e in span.events if e.name[:7] == "gen_ai."])),
                    resource, True))
    return spans


def _field(item: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = item.get(camel)
    return item.get(snake) if value is None else value


_JSON_KINDS = (("stringValue", "string_value"), ("boolValue", "bool_value"), ("intValue", "int_value"),
               ("doubleValue", "double_value"), ("arrayValue", "array_value"), ("kvlistValue", "kvlist_value"),
               ("bytesValue", "bytes_value"))


def _any_json(value: Any, where: str) -> Any:
    if not isinstance(value, Mapping):
        raise OtlpDecodeError(f"{where}: expected an AnyValue object, got {value!r}")
    for camel, snake in _JSON_KINDS:
        item = _field(value, camel, snake)
        if item is None:
            continue
        if camel == "intValue":
            try:
                return int(item)
            except (TypeError, ValueError):
                raise OtlpDecodeError(f"{where}.intValue: expected an integer, got {item!r}") from None
        if camel == "arrayValue":
            return [_any_json(v, f"{where}.arrayValue") for v in (item.get("values") or [])]
        if camel == "kvlistValue":
            return _attrs_json(item.get("values") or [], f"{where}.kvlistValue")
        return item
    return None


def _attrs_json(items: Any, where: str) -> Attributes:
    if not isinstance(items, list):
        raise OtlpDecodeError(f"{where}: expected an array of {{key, value}}")
    out: Attributes = {}
    for i, kv in enumerate(items):
        if not isinstance(kv, Mapping) or not isinstance(kv.get("key"), str):
            raise OtlpDecodeError(f"{where}[{i}]: expected {{\"key\": …, \"value\": …}}")
        out[kv["key"]] = _any_json(kv.get("value") or {}, f"{where}[{i}].value")
    return out


def _hex(value: Any, size: int, where: str, required: bool = True) -> str:
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or len(value) != size * 2:
        raise OtlpDecodeError(f"{where}: expected {size * 2} hex digits, got {value!r}")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise OtlpDecodeError(f"{where}: expected {size * 2} hex digits, got {value!r}") from None
    return value.lower()


def _int(value: Any, where: str) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise OtlpDecodeError(f"{where}: expected an integer of nanoseconds, got {value!r}") from None


def _events_json(events: Any, where: str) -> list[Attributes]:
    if not isinstance(events, list):
        return []
    return [_attrs_json(e.get("attributes") or [], f"{where}.events[{i}].attributes") for i, e in enumerate(events)
            if isinstance(e, Mapping) and str(e.get("name") or "").startswith("gen_ai.")]


def decode_json(body: bytes) -> list[SpanData]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, Mapping):
        raise OtlpDecodeError("body: expected an object with resourceSpans")
    spans: list[SpanData] = []
    for r, resource_spans in enumerate(_field(payload, "resourceSpans", "resource_spans") or []):
        where_r = f"resourceSpans[{r}]"
        resource = _attrs_json((resource_spans.get("resource") or {}).get("attributes") or [],
                               f"{where_r}.resource.attributes")
        for s, scope_spans in enumerate(_field(resource_spans, "scopeSpans", "scope_spans") or []):
            for i, span in enumerate(scope_spans.get("spans") or []):
                where = f"{where_r}.scopeSpans[{s}].spans[{i}]"
                status = span.get("status") or {}
                spans.append(SpanData(
                    _hex(_field(span, "traceId", "trace_id"), 16, f"{where}.traceId"),
                    _hex(_field(span, "spanId", "span_id"), 8, f"{where}.spanId"),
                    _hex(_field(span, "parentSpanId", "parent_span_id"), 8, f"{where}.parentSpanId", False),
                    str(span.get("name") or ""),
                    _int(_field(span, "startTimeUnixNano", "start_time_unix_nano"), f"{where}.startTimeUnixNano"),
                    _int(_field(span, "endTimeUnixNano", "end_time_unix_nano"), f"{where}.endTimeUnixNano"),
                    status.get("code") in (2, "STATUS_CODE_ERROR"),
                    normalise(_merge_events(_attrs_json(span.get("attributes") or [], f"{where}.attributes"),
                                            _events_json(span.get("events"), where))), resource, True))
    return spans
