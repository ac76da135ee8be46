"""Pages that used to answer 500 in normal use: the environments page with a blueprint that declares inputs
(and launching from it end to end), the budget pages after a cheap call in a long window; times read as a
person expects (viewer's zone, no raw ISO stamps) and chart axes on round values."""

from __future__ import annotations

import re
from contextlib import closing
from datetime import UTC, datetime, timedelta

import httpx
from web_harness import PASSWORDS, Dashboard

from costplane.attribution.context import Context
from costplane.core.claims import budget_claims
from costplane.ledger.types import CostEvent
from costplane.web.charts import Series, axis_usd, nice_ticks, stacked_bars
from costplane.web.timefmt import human, time_tag, viewer_zone


def login(d: Dashboard, who: str, **cookies: str) -> httpx.Client:
    client = httpx.Client(base_url=d.url, timeout=10, cookies=cookies)
    r = client.post("/ui/login", data={"username": who, "password": PASSWORDS[who], "next": "/ui/"},
                    headers={"origin": d.url})
    assert r.status_code == 303, r.text
    return client


def test_environments_page_lists_blueprint_inputs_and_launches_with_them(dashboard: Dashboard) -> None:
    with closing(login(dashboard, "dev-a")) as client:
        page = client.get("/ui/environments")
        assert page.status_code == 200, page.text[:3000]
        form = page.text[page.text.index('data-blueprint="gpu-box"'):]
        form = form[:form.index("</form>")]
        assert '<select name="input.size">' in form and "<option selected>large</option>" in form
        assert 'name="input.nodes" value="1"' in form and '<select name="input.spot">' in form
        assert 'name="tag.cost_center"' in form and "TTL 1h 30m" in form
        r = client.post("/ui/environments", headers={"origin": dashboard.url}, follow_redirects=True,
                        data={"blueprint": "gpu-box", "input.size": "xlarge", "input.nodes": "2", "input.spot": "true",
                              "tag.cost_center": "cc-42"})
        assert r.status_code == 200 and "launched (active)" in r.text, r.text[:3000]
        bad = client.post("/ui/environments", headers={"origin": dashboard.url},
                          data={"blueprint": "gpu-box", "input.nodes": "9", "tag.cost_center": "cc-42"})
        assert bad.status_code == 400 and "inputs.nodes" in bad.text and "at most 4" in bad.text
        assert "all.yaml:" in bad.text and str(dashboard.app.config.bundle) not in bad.text  # no server path
    launched = [e for e in dashboard.app.store.list_environments() if e.blueprint == "gpu-box"]
    assert len(launched) == 1
    env = launched[0]
    assert env.owner == "dev-a" and env.context.team == "alpha" and env.context.tags.get("cost_center") == "cc-42"
    assert env.inputs == {"size": "xlarge", "nodes": 2, "spot": True}


def test_budget_pages_after_a_cheap_call_in_a_monthly_budget(dashboard: Dashboard) -> None:
    app = dashboard.app
    now = datetime.now(UTC)
    ctx = Context(team="alpha", agent="alpha-support")
    claims = budget_claims(list(app.bundle.engine.budgets_for("llm.request", ctx, {})), ctx, "gpt-4o-mini", 0, now)
    assert app.store.record_event(CostEvent(id="ev-cheap", ts=now, context=ctx, provider="openai",
                                            model="gpt-4o-mini", cost_nano=3), claims)
    with closing(login(dashboard, "fin")) as client:
        for path in ("/ui/", "/ui/budgets"):
            r = client.get(path)
            assert r.status_code == 200, (path, r.text[:3000])


def test_times_are_shown_in_the_viewers_zone(dashboard: Dashboard) -> None:
    with closing(login(dashboard, "fin", costplane_tz="Europe/Berlin")) as client:
        for path in ("/ui/decisions", "/ui/runs", "/ui/environments"):
            text = client.get(path).text
            stamps = re.findall(r'<time datetime="([^"]+)" data-local( data-seconds="1")?>([^<]+)</time>', text)
            assert stamps, path
            for exact, seconds, shown in stamps:
                when = datetime.fromisoformat(exact.replace("Z", "+00:00"))
                assert shown == human(when, viewer_zone("Europe/Berlin"), seconds=bool(seconds))
                assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}(:\d{2})? CES?T", shown), shown
            assert not re.search(r">\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+", text), path  # no raw ISO in text
    with closing(login(dashboard, "fin", costplane_tz="../../etc/passwd")) as client:
        assert " UTC</time>" in client.get("/ui/decisions").text  # an unusable zone reads as UTC


def test_human_time_format() -> None:
    when = datetime(2026, 12, 7, 13, 5, 9, 123456, tzinfo=UTC)
    assert human(when, viewer_zone("Europe/Berlin")) == "7 Dec 2026, 14:05 CET"
    assert human(when, viewer_zone("America/New_York"), seconds=True) == "7 Dec 2026, 08:05:09 EST"
    assert human(when + timedelta(days=200), viewer_zone("Europe/Berlin")) == "25 Jun 2027, 15:05 CEST"
    assert human(when, viewer_zone(None)) == "7 Dec 2026, 13:05 UTC"
    assert viewer_zone("America%2FNew_York") == viewer_zone("America/New_York")  # as the script stores it
    assert str(time_tag("2026-12-07T13:05:09.123456+00:00", viewer_zone("Asia/Kolkata"))) == (
        '<time datetime="2026-12-07T13:05:09.123456Z" data-local>7 Dec 2026, 18:35 IST</time>')
    assert str(time_tag(None, viewer_zone(None))) == "—"


def test_chart_axes_are_round() -> None:
    for top, step, ceiling in [(1_170_000_000, 500_000_000, 1_500_000_000),
                               (5_000_000_000, 1_000_000_000, 5_000_000_000),
                               (5_000_000_001, 2_000_000_000, 6_000_000_000), (37_000, 10_000, 40_000),
                               (123_456_000_000, 50_000_000_000, 150_000_000_000)]:
        assert nice_ticks(top) == (step, ceiling), top
    for top in range(1, 10**12, 7_919_113_373):
        step, ceiling = nice_ticks(top)
        mantissa = step
        while mantissa % 10 == 0:
            mantissa //= 10
        assert mantissa in (1, 2, 5) and ceiling >= top and ceiling // step <= 5 and ceiling - step < top
    assert [axis_usd(v, 500_000_000) for v in (0, 500_000_000, 1_500_000_000)] == ["$0.00", "$0.50", "$1.50"]
    assert axis_usd(10_000 * 10**9, 5_000 * 10**9) == "$10,000"
    hours = [datetime(2026, 12, 7, h, tzinfo=UTC) for h in range(3)]
    svg = stacked_bars(hours, [Series("alpha", [1_170_000_000, 0, 300_000_000])], label="%H:%M",
                       zone=viewer_zone("Europe/Berlin"))
    labels = re.findall(r'class="axis">([^<]+)</text>', svg)
    assert labels[:4] == ["$0.00", "$0.50", "$1.00", "$1.50"] and labels[4:] == ["01:00", "02:00", "03:00"]
