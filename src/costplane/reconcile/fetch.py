"""Fetch mode: download the bill with an admin key from the environment, following every page.

OpenAI (`OPENAI_ADMIN_KEY`, header `Authorization: Bearer …`), `start_time`/`end_time` in Unix seconds:
  GET /v1/organization/costs?…&bucket_width=1d&group_by=line_item&group_by=project_id&limit=180
  GET /v1/organization/usage/completions?…&bucket_width=1d&group_by=model&group_by=project_id&limit=31
Anthropic (`ANTHROPIC_ADMIN_KEY`, headers `x-api-key: …`, `anthropic-version: 2023-06-01`), `starting_at`/
`ending_at` in RFC 3339:
  GET /v1/organizations/cost_report?…&bucket_width=1d&group_by[]=workspace_id&group_by[]=description&limit=31
  GET /v1/organizations/usage_report/messages?…&bucket_width=1d&group_by[]=model&group_by[]=workspace_id&limit=31

Each request after the first adds `page=<next_page>` until `has_more` is false. The key never appears
in an error message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costplane.reconcile.types import ReconcileError

__all__ = ["BASE_URLS", "KEY_ENV", "FetchedReport", "fetch_reports"]

BASE_URLS = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}
KEY_ENV = {"openai": "OPENAI_ADMIN_KEY", "anthropic": "ANTHROPIC_ADMIN_KEY"}
MAX_PAGES = 1000  # a runaway cursor stops here with an error rather than looping for ever

Params = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class FetchedReport:
    kind: str  # openai-costs | openai-usage | anthropic-cost | anthropic-usage
    pages: list[Any]  # parsed, numbers as Decimal
    raw: list[str]  # each page's body as the API sent it

    def saved_text(self) -> str:
        """The pages as one JSON list, each page byte for byte as received (numbers untouched)."""
        return "[\n" + ",\n".join(page.strip() for page in self.raw) + "\n]\n"


def _requests(provider: str, since: datetime, until: datetime) -> list[tuple[str, str, Params]]:
    """(report kind, path, query) of the two reports of a provider."""
    if provider == "openai":
        window = [("start_time", str(int(since.timestamp()))), ("end_time", str(int(until.timestamp()))),
                  ("bucket_width", "1d")]
        return [("openai-costs", "/v1/organization/costs",
                 [*window, ("group_by", "line_item"), ("group_by", "project_id"), ("limit", "180")]),
                ("openai-usage", "/v1/organization/usage/completions",
                 [*window, ("group_by", "model"), ("group_by", "project_id"), ("limit", "31")])]
    window = [("starting_at", _rfc3339(since)), ("ending_at", _rfc3339(until)), ("bucket_width", "1d")]
    return [("anthropic-cost", "/v1/organizations/cost_report",
             [*window, ("group_by[]", "workspace_id"), ("group_by[]", "description"), ("limit", "31")]),
            ("anthropic-usage", "/v1/organizations/usage_report/messages",
             [*window, ("group_by[]", "model"), ("group_by[]", "workspace_id"), ("limit", "31")])]


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _headers(provider: str, key: str) -> dict[str, str]:
    if provider == "openai":
        return {"authorization": f"Bearer {key}", "user-agent": "costplane-reconcile"}
    return {"x-api-key": key, "anthropic-version": "2023-06-01", "user-agent": "costplane-reconcile"}


def _get(url: str, headers: Mapping[str, str], timeout: float) -> tuple[Any, str]:
    request = urllib.request.Request(url, headers=dict(headers), method="GET")
    shown = url.split("?", 1)[0]
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise ReconcileError(f"GET {shown}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ReconcileError(f"GET {shown}: unreachable: {getattr(exc, 'reason', exc)}") from None
    try:
        text = body.decode("utf-8")
        return json.loads(text, parse_float=Decimal), text
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ReconcileError(f"GET {shown}: the answer is not JSON") from None


def fetch_reports(provider: str, since: datetime, until: datetime, key: str, *, base_url: str | None = None,
                  timeout: float = 60.0) -> list[FetchedReport]:
    """[(report kind, pages)] of the provider's cost and usage reports over [since, until)."""
    if provider not in BASE_URLS:
        raise ReconcileError(f"--fetch takes openai or anthropic, got {provider!r}")
    if not key:
        raise ReconcileError(f"--fetch {provider} needs an admin key in the environment variable {KEY_ENV[provider]}")
    base = (base_url or BASE_URLS[provider]).rstrip("/")
    out: list[FetchedReport] = []
    for kind, path, params in _requests(provider, since, until):
        pages: list[Any] = []
        raw: list[str] = []
        cursor: str | None = None
        while True:
            query = params + ([("page", cursor)] if cursor else [])
            page, text = _get(f"{base}{path}?{urllib.parse.urlencode(query)}", _headers(provider, key), timeout)
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise ReconcileError(f"GET {base}{path}: expected a report page with a data list")
            pages.append(page)
            raw.append(text)
            cursor = page.get("next_page") if page.get("has_more") else None
            if not cursor:
                break
            if len(pages) >= MAX_PAGES:
                raise ReconcileError(f"GET {base}{path}: more than {MAX_PAGES} pages; narrow --since/--until")
        out.append(FetchedReport(kind, pages, raw))
    return out
