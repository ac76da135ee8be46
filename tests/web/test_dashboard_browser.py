"""The dashboard in a real browser: Playwright drives Debian's Chromium headless (no browser download).

Screenshots of every page are saved under $COSTPLANE_SCREENSHOTS (default: tests/web/screenshots/, git-ignored).
Without /usr/bin/chromium the tests skip, unless COSTPLANE_REQUIRE_BROWSER=1 (as in .ci/run), where they fail.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_harness import PASSWORDS, Dashboard

CHROMIUM = Path(os.environ.get("COSTPLANE_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(os.environ.get("COSTPLANE_SCREENSHOTS", Path(__file__).parent / "screenshots"))
# A closed network: without these Chromium keeps trying to reach Google's hosts.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    if os.environ.get("COSTPLANE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"{CHROMIUM} is missing but COSTPLANE_REQUIRE_BROWSER=1 (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Any, d: Dashboard, who: str) -> Any:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{d.url}/ui/")
    assert "/ui/login" in page.url
    page.fill("#username", who)
    page.fill("#password", PASSWORDS[who])
    page.click("button[type=submit]")
    page.wait_for_url(f"{d.url}/ui/")
    return page


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000


def test_finance_sees_every_team_and_screenshots_every_page(browser: Any, dashboard: Dashboard) -> None:
    page = _page(browser, dashboard, "fin")
    teams = page.locator("#teams a[data-team]").all_inner_texts()
    assert sorted(teams) == ["alpha", "beta"]
    _shot(page, "finance-overview")
    for link, name in (("Breakdown", "breakdown"), ("Budgets", "budgets"), ("Outcomes & SLOs", "outcomes"),
                       ("Environments", "environments"), ("Runs", "runs"), ("Decisions", "decisions")):
        page.click(f"nav >> text={link}")
        page.wait_for_load_state()
        assert page.locator("h1").first.inner_text()
        _shot(page, f"finance-{name}")
    page.click("nav >> text=Runs")
    page.click("a[data-run=run-alpha-1]")
    page.wait_for_selector("#run-tree")
    _shot(page, "finance-run")
    page.goto(f"{dashboard.url}/ui/login")
    _shot(page, "login")


def test_developer_sees_only_their_team(browser: Any, dashboard: Dashboard) -> None:
    page = _page(browser, dashboard, "dev-a")
    assert page.locator("#teams a[data-team]").all_inner_texts() == ["alpha"]
    assert "beta" not in page.content()
    _shot(page, "developer-overview")
    page.click("nav >> text=Runs")
    runs = page.locator("#runs a[data-run]").all_inner_texts()
    assert runs and all("alpha" in r for r in runs)
    _shot(page, "developer-runs")


def test_click_overview_team_agent_run(browser: Any, dashboard: Dashboard) -> None:
    page = _page(browser, dashboard, "fin")
    page.click("#teams a[data-team=alpha]")
    page.wait_for_url(re.compile(r".*/ui/breakdown\?.*team=alpha.*"))
    assert page.locator("h1").inner_text() == "Breakdown by agent"
    _shot(page, "drill-team")
    page.click("#groups a[data-agent=alpha-support]")
    page.wait_for_url(re.compile(r".*agent=alpha-support.*"))
    assert page.locator("h1").inner_text() == "Breakdown by run"
    _shot(page, "drill-agent")
    page.click("#groups a[data-run=run-alpha-1]")
    page.wait_for_url(f"{dashboard.url}/ui/runs/run-alpha-1")
    assert page.locator("#run-id").inner_text() == "run-alpha-1"
    assert page.locator("#run-tree li[data-node]").count() >= 3
    _shot(page, "drill-run")


def test_environment_torn_down_from_the_ui(browser: Any, dashboard: Dashboard) -> None:
    page = _page(browser, dashboard, "dev-a")
    page.click("nav >> text=Environments")
    row = page.locator(f"tr[data-env={dashboard.env_id}]")
    assert row.get_attribute("data-state") == "active"
    ttl = row.locator(".ttl").inner_text()
    assert re.fullmatch(r"[0-9]+:[0-5][0-9]:[0-5][0-9]", ttl), ttl  # the live countdown
    _shot(page, "environments-before-teardown")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button[name=teardown]").click()
    page.wait_for_selector(f"tr[data-env={dashboard.env_id}][data-state=torn_down]")
    _shot(page, "environments-after-teardown")
    env = dashboard.app.store.get_environment(dashboard.env_id)
    assert env is not None and env.state == "torn_down"


def test_live_update_without_reload(browser: Any, dashboard: Dashboard) -> None:
    from datetime import UTC, datetime

    from costplane.attribution.context import Context
    from costplane.ledger.types import CostEvent

    page = _page(browser, dashboard, "fin")
    page.click("nav >> text=Decisions")
    page.wait_for_selector("#live-status.on")
    before = page.locator("#decisions tr[data-decision]").count()
    from costplane.ledger.types import DecisionRecord

    dashboard.app.store.record_decision(DecisionRecord(
        id="dec-live", ts=datetime.now(UTC), hook="llm.request", effect="deny",
        bundle_revision=dashboard.app.bundle.revision, context=Context(team="alpha"), input={}, result={},
        policies=("live-policy",), reason="arrived while the page was open"))
    dashboard.app.store.record_nodes([], [CostEvent(id="ev-live", ts=datetime.now(UTC), context=Context(team="alpha"),
                                                    provider="openai", model="gpt-4o-mini", cost_nano=1)])
    page.wait_for_selector("tr[data-decision=dec-live]", timeout=10_000)
    assert page.locator("#decisions tr[data-decision]").count() == before + 1
