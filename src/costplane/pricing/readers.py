"""Provider usage shapes -> `TokenUsage`: pure functions, one per wire format.

Every reader returns None when there is no usage: no usage object, or one without a valid input
count (a non-negative JSON integer: `{}`, `"12"`, `12.0`, `-1`, `true` or only `total_tokens` are no
usage, and the gateway charges the call's bound, status `estimated`, never a silent $0). It never
raises on odd data: any other count that is not a non-negative integer reads as 0, and a sub-count
larger than its total is clamped. Readers follow the genai-prices convention of `TokenUsage`: input
counts every prompt token (cache reads and writes included), output every generated token
(reasoning included).

* OpenAI Chat Completions: `prompt_tokens` (incl. cached), `completion_tokens` (incl.
  reasoning), `prompt_tokens_details` {cached_tokens, cache_write_tokens, audio_tokens,
  image_tokens}, `completion_tokens_details` {reasoning_tokens, audio_tokens, image_tokens,
  accepted/rejected_prediction_tokens — both billed as output, no unit of their own}; the
  response's `service_tier` is the tier actually served.
* OpenAI Responses / Realtime: `input_tokens`/`output_tokens` with `input_tokens_details`
  (or `input_token_details`) {cached_tokens, cache_write_tokens, audio_tokens, image_tokens,
  cached_tokens_details {audio_tokens, image_tokens}} and `output_tokens_details`
  {reasoning_tokens, audio_tokens, image_tokens}; `web_search_call` / `file_search_call` /
  `code_interpreter_call` / `image_generation_call` output items are tool-call fees.
* Anthropic Messages: `input_tokens` EXCLUDES cache reads and writes; `cache_creation`
  {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}; `server_tool_use`
  {web_search_requests}; `service_tier` standard | priority | batch.
* Gemini `usageMetadata`: promptTokenCount (incl. cached content), cachedContentTokenCount,
  candidatesTokenCount (EXCLUDES thoughts), thoughtsTokenCount, toolUsePromptTokenCount
  (billed as input, not in promptTokenCount), prompt/cache/candidatesTokensDetails by modality.
* Bedrock Converse: `inputTokens` EXCLUDES cacheReadInputTokens and cacheWriteInputTokens;
  `cacheDetails` [{ttl, inputTokens}] splits writes by TTL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from costplane.pricing.types import TokenUsage

__all__ = [
    "PER_CALL_UNITS",
    "anthropic_tool_units",
    "anthropic_usage",
    "bedrock_usage",
    "cap_tool_uses",
    "gemini_usage",
    "openai_response_units",
    "openai_usage",
    "request_conditions",
    "request_units",
    "tier_conditions",
    "tool_use_limits",
    "with_conditions",
    "with_per_call_units",
    "with_units",
]

_MODALITIES = {"AUDIO": "audio", "IMAGE": "image", "VIDEO": "video"}
#: OpenAI built-in tools billed per call beyond their tokens (Responses `max_tool_calls` caps them all).
_OPENAI_TOOL_UNITS = {"web_search": "web_searches", "web_search_preview": "web_searches",
                      "file_search": "storage_searches", "code_interpreter": "code_executions",
                      "image_generation": "image_generations"}
#: Responses output items that are such calls, one fee each.
_OPENAI_CALL_ITEMS = {"web_search_call": "web_searches", "file_search_call": "storage_searches",
                      "code_interpreter_call": "code_executions", "image_generation_call": "image_generations"}
#: Anthropic server tools billed per use, by type prefix (web_search_20250305 -> web_searches); each
#: takes `max_uses`. Web fetch is billed by its tokens only.
_ANTHROPIC_TOOL_UNITS = {"web_search_": "web_searches"}
#: Anthropic server tools with a fee beyond their tokens and no parameter capping their uses: code
#: execution (billed by container time; metered as `code_executions`, priced only by an override).
_ANTHROPIC_UNCAPPED_TOOLS = {"code_execution_": "code_executions"}
#: Units an endpoint's call is billed once for when its request enables them, whatever the usage
#: reports: OpenAI bills one web search per Chat Completions call with `web_search_options`.
PER_CALL_UNITS: Mapping[str, tuple[str, ...]] = {"chat.completions": ("web_searches",)}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _count(value: Any) -> int | None:
    """A valid count (a non-negative JSON integer), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _usage(input_tokens: int, output_tokens: int, *, cache_read: int = 0, cache_write: int = 0,
           reasoning: int = 0, units: Mapping[str, int] | None = None,
           conditions: Mapping[str, str] | None = None) -> TokenUsage:
    """A valid TokenUsage from possibly inconsistent counts: every sub-count clamped to its total."""
    cache_read = min(cache_read, input_tokens)
    cache_write = min(cache_write, input_tokens - cache_read)
    reasoning = min(reasoning, output_tokens)
    extra = dict(units or {})
    limits = {"cache_write_1h": cache_write, "input_audio": input_tokens, "input_image": input_tokens,
              "input_video": input_tokens, "output_audio": output_tokens, "output_image": output_tokens,
              "output_video": output_tokens}
    for name, limit in limits.items():
        if name in extra:
            extra[name] = min(extra[name], limit)
    for modality in ("audio", "image"):
        key = f"cache_{modality}_read"
        if key in extra:
            extra[key] = min(extra[key], cache_read, extra.get(f"input_{modality}", 0))
    return TokenUsage(input_tokens, output_tokens, cache_read, cache_write, reasoning,
                      units=tuple((k, v) for k, v in extra.items() if v),
                      conditions=tuple((k, v) for k, v in (conditions or {}).items() if v))


def tier_conditions(tier: Any) -> dict[str, str]:
    """A served tier as genai-prices conditions (batch is `processing`, not a tier; `default` is OpenAI's
    name for the standard tier it served)."""
    if not isinstance(tier, str) or not tier or tier in ("auto", "default", "standard", "standard_only"):
        return {}
    if tier == "batch":
        return {"processing": "batch"}
    return {"service_tier": tier}


def openai_usage(usage: Mapping[str, Any] | None, payload: Mapping[str, Any] | None = None) -> TokenUsage | None:
    """OpenAI Chat Completions, Responses and Realtime usage; `payload` (the whole response)
    supplies the served `service_tier` and the Responses API's tool-call items."""
    if not isinstance(usage, Mapping):
        return None
    responses_style = "input_tokens" in usage and "prompt_tokens" not in usage
    prompt = _count(usage.get("input_tokens" if responses_style else "prompt_tokens"))
    if prompt is None:
        return None
    completion = _int(usage.get("output_tokens" if responses_style else "completion_tokens"))
    details = _map(usage.get("input_tokens_details") or usage.get("input_token_details")
                   or usage.get("prompt_tokens_details"))
    out_details = _map(usage.get("output_tokens_details") or usage.get("output_token_details")
                       or usage.get("completion_tokens_details"))
    cached_details = _map(details.get("cached_tokens_details"))
    units = {
        "input_audio": _int(details.get("audio_tokens")),
        "input_image": _int(details.get("image_tokens")),
        "cache_audio_read": _int(cached_details.get("audio_tokens")),
        "cache_image_read": _int(cached_details.get("image_tokens")),
        "output_audio": _int(out_details.get("audio_tokens")),
        "output_image": _int(out_details.get("image_tokens")),
    }
    conditions: dict[str, str] = {}
    if isinstance(payload, Mapping):
        conditions.update(tier_conditions(payload.get("service_tier")))
        for name, count in openai_response_units(payload).items():
            units[name] = units.get(name, 0) + count
    return _usage(prompt, completion, cache_read=_int(details.get("cached_tokens")),
                  cache_write=_int(details.get("cache_write_tokens")),
                  reasoning=_int(out_details.get("reasoning_tokens")), units=units, conditions=conditions)


def openai_response_units(payload: Mapping[str, Any]) -> dict[str, int]:
    """Tool-call fees in a Responses API body: one per web_search_call / file_search_call /
    code_interpreter_call / image_generation_call item."""
    out: dict[str, int] = {}
    items = payload.get("output")
    if not isinstance(items, list):
        return out
    for item in items:
        kind = item.get("type") if isinstance(item, Mapping) else None
        unit = _OPENAI_CALL_ITEMS.get(kind) if isinstance(kind, str) else None
        if unit is not None:
            out[unit] = out.get(unit, 0) + 1
    return out


def anthropic_usage(usage: Mapping[str, Any] | None) -> TokenUsage | None:
    """Anthropic usage: input_tokens EXCLUDE cache reads and writes, so add them back."""
    if not isinstance(usage, Mapping):
        return None
    uncached = _count(usage.get("input_tokens"))
    if uncached is None:
        return None
    read = _int(usage.get("cache_read_input_tokens"))
    creation = _map(usage.get("cache_creation"))
    five = _int(creation.get("ephemeral_5m_input_tokens"))
    hour = _int(creation.get("ephemeral_1h_input_tokens"))
    write = max(_int(usage.get("cache_creation_input_tokens")), five + hour)
    tools = _map(usage.get("server_tool_use"))
    conditions = tier_conditions(usage.get("service_tier"))
    speed = usage.get("speed")
    if isinstance(speed, str) and speed not in ("", "standard"):
        conditions["speed"] = speed
    return _usage(uncached + read + write, _int(usage.get("output_tokens")),
                  cache_read=read, cache_write=write,
                  units={"cache_write_1h": hour, "web_searches": _int(tools.get("web_search_requests"))},
                  conditions=conditions)


def anthropic_tool_units(blocks: Any) -> dict[str, int]:
    """Per-use fees in Anthropic content blocks the usage object does not count: one
    `code_executions` per `server_tool_use` block running code (`code_execution`,
    `bash_code_execution`, `text_editor_code_execution`)."""
    count = sum(1 for block in _list(blocks) if _map(block).get("type") == "server_tool_use"
                and "code_execution" in str(_map(block).get("name", "")))
    return {"code_executions": count} if count else {}


def with_units(usage: TokenUsage | None, extra: Mapping[str, int]) -> TokenUsage | None:
    """`usage` with at least the counts of `extra` (a larger reported count is kept)."""
    if usage is None or not extra:
        return usage
    units = dict(usage.units)
    for name, count in extra.items():
        units[name] = max(units.get(name, 0), count)
    return TokenUsage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                      usage.reasoning_tokens, units=tuple(units.items()), conditions=usage.conditions)


def _by_modality(details: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in details if isinstance(details, list) else ():
        entry = _map(item)
        modality = _MODALITIES.get(str(entry.get("modality", "")).upper())
        if modality is not None:
            out[modality] = out.get(modality, 0) + _int(entry.get("tokenCount"))
    return out


def gemini_usage(metadata: Mapping[str, Any] | None) -> TokenUsage | None:
    """Gemini / Vertex AI `usageMetadata`."""
    if not isinstance(metadata, Mapping):
        return None
    prompt_count = _count(metadata.get("promptTokenCount"))
    if prompt_count is None:
        return None
    tool_prompt = _int(metadata.get("toolUsePromptTokenCount"))
    prompt = prompt_count + tool_prompt
    thoughts = _int(metadata.get("thoughtsTokenCount"))
    output = _int(metadata.get("candidatesTokenCount")) + thoughts
    prompt_mod = _by_modality(metadata.get("promptTokensDetails"))
    for modality, count in _by_modality(metadata.get("toolUsePromptTokensDetails")).items():
        prompt_mod[modality] = prompt_mod.get(modality, 0) + count
    cache_mod = _by_modality(metadata.get("cacheTokensDetails"))
    out_mod = _by_modality(metadata.get("candidatesTokensDetails"))
    units = {f"input_{m}": c for m, c in prompt_mod.items()}
    units.update({f"output_{m}": c for m, c in out_mod.items()})
    units.update({f"cache_{m}_read": c for m, c in cache_mod.items() if m in ("audio", "image")})
    return _usage(prompt, output, cache_read=_int(metadata.get("cachedContentTokenCount")),
                  reasoning=thoughts, units=units)


def bedrock_usage(usage: Mapping[str, Any] | None) -> TokenUsage | None:
    """Bedrock Converse / ConverseStream `usage`."""
    if not isinstance(usage, Mapping):
        return None
    uncached = _count(usage.get("inputTokens"))
    if uncached is None:
        return None
    read = _int(usage.get("cacheReadInputTokens"))
    write = _int(usage.get("cacheWriteInputTokens"))
    hour = sum(_int(_map(d).get("inputTokens")) for d in _list(usage.get("cacheDetails"))
               if _map(d).get("ttl") == "1h")
    return _usage(uncached + read + write, _int(usage.get("outputTokens")),
                  cache_read=read, cache_write=write, units={"cache_write_1h": hour})


def _list(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else ()


def request_conditions(body: Mapping[str, Any]) -> dict[str, str]:
    """Price conditions a request asks for: its `service_tier` (OpenAI, Gemini) and `speed`."""
    out = tier_conditions(body.get("service_tier"))
    speed = body.get("speed")
    if isinstance(speed, str) and speed not in ("", "standard"):
        out["speed"] = speed
    return out


def _tool_unit(kind: str) -> str | None:
    """The fee-bearing unit of a tool `type` (OpenAI built-ins, Anthropic server tools), if any."""
    if kind.startswith("web_search"):
        return "web_searches"
    if kind in _OPENAI_TOOL_UNITS:
        return _OPENAI_TOOL_UNITS[kind]
    return next((unit for prefix, unit in _ANTHROPIC_UNCAPPED_TOOLS.items() if kind.startswith(prefix)), None)


def request_units(body: Mapping[str, Any]) -> frozenset[str]:
    """The fee-bearing units a request may incur: built-in tools it enables (web search, file search,
    code execution / code interpreter, image generation)."""
    units: set[str] = set()
    if isinstance(body.get("web_search_options"), Mapping):
        units.add("web_searches")
    for tool in _list(body.get("tools")):
        unit = _tool_unit(str(_map(tool).get("type", "")))
        if unit is not None:
            units.add(unit)
    return frozenset(units)


def _anthropic_tool_unit(tool: Mapping[str, Any]) -> str | None:
    kind = tool.get("type")
    if not isinstance(kind, str):
        return None
    return next((unit for prefix, unit in _ANTHROPIC_TOOL_UNITS.items() if kind.startswith(prefix)), None)


def cap_tool_uses(body: dict[str, Any], default: int) -> None:
    """Give every Anthropic server tool billed per use that has no `max_uses` the gateway's default,
    in place (the body is then forwarded so): the provider can never run more uses than the bound
    counts. A client's own `max_uses` is kept."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return
    for index, tool in enumerate(tools):
        if isinstance(tool, Mapping) and _anthropic_tool_unit(tool) is not None and tool.get("max_uses") is None:
            tools[index] = {**tool, "max_uses": default}


def tool_use_limits(body: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, str]]:
    """The most calls of each fee-bearing unit (`request_units`) a request can incur, and the units it
    enables with no cap, each with the request field that enables it (`tools[2]`).

    Anthropic server tools count their `max_uses` (summed over tools of the same unit); a Chat
    Completions call with `web_search_options` is billed one search. A built-in tool with no cap
    parameter (an OpenAI-style `web_search`/`file_search` entry in `tools`, an Anthropic
    `code_execution_*` tool) is uncapped."""
    limits: dict[str, int] = {}
    uncapped: dict[str, str] = {}
    if isinstance(body.get("web_search_options"), Mapping):
        limits["web_searches"] = 1
    for index, raw in enumerate(_list(body.get("tools"))):
        tool = _map(raw)
        unit = _anthropic_tool_unit(tool)
        uses = tool.get("max_uses")
        if unit is not None and isinstance(uses, int) and not isinstance(uses, bool) and uses > 0:
            limits[unit] = limits.get(unit, 0) + uses
            continue
        unit = unit or _tool_unit(str(tool.get("type", "")))
        if unit is not None:
            uncapped.setdefault(unit, f"tools[{index}]")
    for unit in uncapped:
        limits.pop(unit, None)
    return limits, uncapped


def with_per_call_units(usage: TokenUsage, endpoint: str, enabled: Iterable[str]) -> TokenUsage:
    """`usage` with at least one of each unit the endpoint bills once per call (`PER_CALL_UNITS`)
    that the request enabled; a larger reported count is kept."""
    wanted = [u for u in PER_CALL_UNITS.get(endpoint, ()) if u in enabled and usage.count(u) < 1]
    if not wanted:
        return usage
    units = dict(usage.units)
    units.update((u, 1) for u in wanted)
    return TokenUsage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                      usage.reasoning_tokens, units=tuple(units.items()), conditions=usage.conditions)


def with_conditions(usage: TokenUsage, requested: Mapping[str, str]) -> TokenUsage:
    """`usage` with the request's conditions added where the response did not say (the response's
    served tier wins over the requested one)."""
    if not requested:
        return usage
    merged = dict(requested)
    merged.update(usage.conditions)
    if tuple(sorted(merged.items())) == usage.conditions:
        return usage
    return TokenUsage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                      usage.reasoning_tokens, units=usage.units, conditions=tuple(merged.items()))
