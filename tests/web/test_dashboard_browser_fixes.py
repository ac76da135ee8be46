"""In a real browser (Debian's Chromium, headless): times in the browser's own zone, launching from a blueprint
with inputs, and screenshots of the pages that used to fail (saved under $COSTPLANE_SCREENSHOTS)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from web_harness import PASSWORDS, Dashboard

CHROMIUM = Path(os.environ.get("COSTPLANE_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(os.environ.get("COSTPLANE_SCREENSHOTS", Path(__file__).parent / "screenshots"))
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    if os.environ.get("COSTPLANE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"{CHROMIUM} is missing but COSTPLANE_REQUIRE_BROWSER=1 (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow
HUMAN = re.compile(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}(:\d{2})? (GMT[+-]\d+|[A-Z]{3,4})")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Any, d: Dashboard, who: str, zone: str) -> Any:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id=zone, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{d.url}/ui/login")
    page.fill("#username", who)
    page.fill("#password", PASSWORDS[who])
    page.click("button[type=submit]")
    page.wait_for_url(f"{d.url}/ui/")
    return page


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_times_in_the_browsers_zone(browser: Any, dashboard: Dashboard) -> None:
    page = _page(browser, dashboard, "fin", "Asia/Tokyo")
    page.click("nav >> text=Decisions")
    page.wait_for_load_state()
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies.get("costplane_tz") == "Asia%2FTokyo"  # remembered for the server
    stamps = page.locator("#decisions time[data-local]").all_inner_texts()
    assert stamps and all(HUMAN.fullmatch(s) for s in stamps), stamps
    assert all(s.endswith(("GMT+9", "JST")) for s in stamps), stamps
    _shot(page, "tokyo-decisions")
    page.click("nav >> text=Budgets")
    _shot(page, "tokyo-budgets")
    page.click("nav >> text=Overview")
    axis = page.locator("svg.chart text.axis").all_text_contents()
    values = [a for a in axis if a.startswith("$")]
    assert values[0] in ("$0", "$0.00", "$0.000") and len(values) >= 2, axis
    hours = [a for a in axis if re.fullmatch(r"\d{2}:00", a)]
    now_tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    assert hours and int(hours[-1][:2]) in {(now_tokyo.hour - k) % 24 for k in range(3)}, hours  # Tokyo hours
    assert "Asia/Tokyo" in page.locator(".cards").inner_text()  # today is the viewer's day
    _shot(page, "tokyo-overview")


def test_launch_with_inputs_from_the_page(browser: Any, dashboard: Dashboard) -> None:
    page = _page(browser, dashboard, "dev-a", "Europe/Berlin")
    page.click("nav >> text=Environments")
    form = page.locator("form[data-blueprint=gpu-box]")
    form.locator("select[name='input.size']").select_option("xlarge")
    form.locator("input[name='input.nodes']").fill("3")
    form.locator("input[name='tag.cost_center']").fill("cc-7")
    _shot(page, "environments-launch-form")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".notice")
    assert "launched (active)" in page.locator(".notice").inner_text()
    until = page.locator("tr[data-env] time[data-local]").all_inner_texts()
    assert until and all(s.endswith(("CET", "GMT+1")) for s in until), until
    _shot(page, "environments-after-launch")
    launched = [e for e in dashboard.app.store.list_environments() if e.blueprint == "gpu-box"]
    assert len(launched) == 1 and launched[0].inputs["nodes"] == 3 and launched[0].inputs["size"] == "xlarge"
