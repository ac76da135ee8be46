"""An extension longer than any duration costplane accepts is a 400 naming `by` and the maximum, on both the
users' API and the machine API, whether given as text or as seconds; durations elsewhere are bounded too."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from api_harness import Api

from costplane.ledger.windows import MAX_DURATION_SECONDS, WindowError, parse_duration

HUGE = ["99999999999h", "9" * 5000 + "s", 10**12, MAX_DURATION_SECONDS + 1, "3651d"]


@pytest.mark.parametrize("text", ["99999999999h", "9" * 5000 + "s", "3651d", "522w"])
def test_parse_duration_names_the_maximum(text: str) -> None:
    with pytest.raises(WindowError, match=r"at most 3650d \(315360000 seconds\)"):
        parse_duration(text)
    assert parse_duration("3650d") == MAX_DURATION_SECONDS


def test_huge_extension_is_a_400_naming_by(make_api: Callable[..., Api]) -> None:
    api = make_api(more=True)
    env_id = api.ids["env-alpha"]
    for by in HUGE:
        got = api.call("root", "POST", f"/api/v1/environments/{env_id}/extend", json={"by": by})
        assert got.status_code == 400, (by, got.status_code, got.text)
        error = got.json()["error"]
        assert error["field"] == "by" and "3650d" in error["message"], error
    beyond_int64 = api.call("root", "POST", f"/api/v1/environments/{env_id}/extend", json={"by": 10**20})
    assert beyond_int64.status_code == 400 and beyond_int64.json()["error"]["field"] == "by"
    ok = api.call("root", "POST", f"/api/v1/environments/{env_id}/extend", json={"by": "1h"})
    assert ok.status_code == 200, ok.text
    created = api.call("root", "POST", "/api/v1/keys", json={"name": "alpha-bot", "attributes": {"team": "alpha"}})
    assert created.status_code in (200, 201), created.text
    api.tokens["key-alpha"] = created.json()["secret"]
    for by in HUGE:  # the machine API parses `by` the same way
        got = api.call("key-alpha", "POST", f"/v1/environments/{env_id}/extend", json={"by": by})
        assert got.status_code == 400, (by, got.status_code, got.text)
        message = got.json()["error"]["message"]
        assert got.json()["error"]["field"] == "by" and re.search(r"\b\d+ ?d(ays)?\b", message), got.text  # the max


def test_core_refuses_a_huge_extension_before_any_date_arithmetic(make_api: Callable[..., Api]) -> None:
    from costplane.attribution.context import Context
    from costplane.core.requests import Denial
    from costplane.lifecycle.service import build_core

    api = make_api(more=True)
    core = build_core(api.app)
    for seconds in (10**12, 10**30, MAX_DURATION_SECONDS + 1):
        got = core.extend(api.ids["env-alpha"], Context(team="alpha", owner="ana"), seconds)
        assert isinstance(got, Denial) and got.status == 400 and got.message.startswith("by: "), got
        assert "3650d" in got.message
