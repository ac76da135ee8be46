"""Property tests of the served API against its own OpenAPI document (schemathesis).

The real server (create_server, SQLite and PostgreSQL) on 127.0.0.1 with two teams' spend, runs, outcomes
and environments; its `/api/v1/openapi.json` is loaded as served, so every operation the route table
gains (the users' API and the machine API) is walked without listing it here. For an admin and for a
developer of team alpha, every operation gets schema-valid (positive) and schema-violating (negative)
requests, a bounded number of each (derandomized, so a failure reproduces), and every response must be:
not a 5xx, a documented status code, a documented content type, and a body valid against the documented
schema; a request that violates the document (negative) must be refused with a 4xx. All failures are
collected and reported together, each with a curl command that reproduces it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from api_harness import Api
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

#: examples per operation, credential and generation mode (positive, negative)
EXAMPLES = int(os.environ.get("COSTPLANE_SCHEMATHESIS_EXAMPLES", "4"))
#: no 5xx; status code, content type and body as documented; a schema-violating request is refused (4xx)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
_KEEP = 3  # failures kept per operation, credential and mode (the first ones, the rest are alike)


def _label(operation: Any, who: str, mode: GenerationMode) -> str:
    return f"[{who} {mode.value}] {operation.label}"


def _examples(api: Api, who: str, operation: Any, mode: GenerationMode, stats: dict[str, int],
              session: requests.Session) -> list[str]:
    """Failures of one operation for one credential and generation mode (at most _KEEP)."""
    headers = {"authorization": f"Bearer {api.tokens[who]}"}
    found: list[str] = []
    try:
        strategy = operation.as_strategy(generation_mode=mode)
    except Exception as exc:
        return [] if mode is GenerationMode.NEGATIVE else [f"{_label(operation, who, mode)}: no strategy: {exc}"]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
              verbosity=Verbosity.quiet)
    @given(case=strategy)
    def run(case: Any) -> None:
        stats["requests"] += 1
        response = case.call(base_url=api.url, headers=headers, timeout=10, session=session)
        stats[f"{response.status_code // 100}xx"] = stats.get(f"{response.status_code // 100}xx", 0) + 1
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:
            if len(found) < _KEEP:
                text = f"{_label(operation, who, mode)} -> {response.status_code}\n{str(exc).strip()[:1500]}\n  " \
                       f"{case.as_curl_command(headers=headers)}"
                found.append(text.replace(api.tokens[who], "<token>").replace(api.url, "http://SERVER"))

    try:
        run()
    except Exception as exc:
        if mode is GenerationMode.POSITIVE:
            found.append(f"{_label(operation, who, mode)}: {type(exc).__name__}: {exc}")
    return found


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
@pytest.mark.timeout(300)
def test_every_operation_conforms_to_the_document(make_api: Callable[..., Api], store_url: Callable[[], str]) -> None:
    api = make_api(store_url(), more=True)
    schema = schemathesis.openapi.from_url(f"{api.url}/api/v1/openapi.json",
                                           headers={"authorization": f"Bearer {api.tokens['root']}"})
    operations = [r.ok().label for r in schema.get_all_operations()]
    assert "GET /api/v1/budgets" in operations and "POST /api/v1/environments" in operations
    failures: list[str] = []
    stats = {"requests": 0}
    with requests.Session() as session:  # one keep-alive connection
        for who in ("root", "dev-a"):
            for result in schema.get_all_operations():
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    failures += _examples(api, who, result.ok(), mode, stats, session)
    print(f"schemathesis: {len(operations)} operations, {stats}")
    assert stats["requests"] >= 2 * len(operations), stats  # every operation was called for both credentials
    assert not failures, f"{len(failures)} failures, {stats}:\n\n" + "\n\n".join(failures)
