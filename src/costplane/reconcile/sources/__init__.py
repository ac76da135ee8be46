"""Bill readers: `read_bill(path)` recognises the file by its content and reads it into billed lines.

* OpenAI Costs API pages (results `"object": "organization.costs.result"`) — money;
* OpenAI Usage API completions pages (`"organization.usage.completions.result"`) — tokens;
* Anthropic cost report pages (results with `amount` and `currency`) — money;
* Anthropic messages usage report pages (results with `uncached_input_tokens`) — tokens;
* a FOCUS export, `.csv` or `.parquet` — money.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from costplane.reconcile.sources.anthropic import read_anthropic
from costplane.reconcile.sources.common import load_json, pages_of
from costplane.reconcile.sources.context import ReadContext
from costplane.reconcile.sources.focus import FocusOptions, read_focus
from costplane.reconcile.sources.openai import COSTS_OBJECT, USAGE_OBJECT, read_openai
from costplane.reconcile.types import MONEY, TOKENS, BillSource, ReconcileError

__all__ = ["FocusOptions", "ReadContext", "detect", "read_bill", "read_pages"]


def detect(pages: list[Mapping[str, Any]], path: str) -> tuple[str, str]:
    """(provider, kind) of JSON report pages, from the first result any bucket holds."""
    for page in pages:
        for bucket in page["data"]:
            results = bucket.get("results", bucket.get("result")) if isinstance(bucket, Mapping) else None
            for result in results if isinstance(results, list) else ():
                if not isinstance(result, Mapping):
                    continue
                obj = result.get("object")
                if obj == COSTS_OBJECT:
                    return "openai", MONEY
                if obj == USAGE_OBJECT:
                    return "openai", TOKENS
                if "uncached_input_tokens" in result or "cache_read_input_tokens" in result:
                    return "anthropic", TOKENS
                if "amount" in result and "currency" in result:
                    return "anthropic", MONEY
                raise ReconcileError(f"{path}: results of an unknown report (keys {', '.join(sorted(result))}); "
                                     "expected an OpenAI costs/usage or Anthropic cost/usage report")
    raise ReconcileError(f"{path}: the report has no results, so its kind cannot be told; pass it with "
                         "--as openai-costs|openai-usage|anthropic-cost|anthropic-usage")


_KINDS = {"openai-costs": ("openai", MONEY), "openai-usage": ("openai", TOKENS),
          "anthropic-cost": ("anthropic", MONEY), "anthropic-usage": ("anthropic", TOKENS)}


def read_pages(pages: list[Mapping[str, Any]], path: str, ctx: ReadContext, as_kind: str | None = None) -> BillSource:
    """JSON report pages (read from a file or fetched) as a bill source."""
    if as_kind is not None and as_kind not in _KINDS:
        raise ReconcileError(f"unknown report kind {as_kind!r}; use one of {', '.join(_KINDS)}")
    provider, kind = _KINDS[as_kind] if as_kind else detect(pages, path)
    reader = read_openai if provider == "openai" else read_anthropic
    return reader(pages, path, ctx, kind)


def read_bill(path: Path, ctx: ReadContext, *, focus: FocusOptions | None = None,
              as_kind: str | None = None) -> BillSource:
    """One downloaded bill file as a bill source (see the module docstring for what is recognised)."""
    if not path.is_file():
        raise ReconcileError(f"{path}: no such file")
    if path.suffix.lower() in (".csv", ".parquet"):
        return read_focus(path, ctx, focus or FocusOptions())
    return read_pages(pages_of(load_json(path), str(path)), str(path), ctx, as_kind)
