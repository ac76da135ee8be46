"""The dashboard over real HTTP without a browser: login, sessions, role scoping of every page,
cross-origin refusal, live events and the vendored assets."""

from __future__ import annotations

import threading
from contextlib import closing
from datetime import UTC, datetime

import httpx
import pytest
from web_harness import PASSWORDS, Dashboard

from costplane.attribution.context import Context
from costplane.ledger.types import CostEvent

PAGES = ["/ui/", "/ui/breakdown", "/ui/budgets", "/ui/outcomes", "/ui/environments", "/ui/runs", "/ui/decisions"]


def login(d: Dashboard, who: str, password: str | None = None) -> httpx.Client:
    client = httpx.Client(base_url=d.url, timeout=10)
    r = client.post("/ui/login", data={"username": who, "password": password or PASSWORDS[who], "next": "/ui/"},
                    headers={"origin": d.url})
    assert r.status_code == 303, r.text
    assert "costplane_session" in client.cookies
    return client


def test_pages_need_a_login(dashboard: Dashboard) -> None:
    r = httpx.get(f"{dashboard.url}/ui/budgets", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login?next=/ui/budgets"
    assert "Log in" in httpx.get(f"{dashboard.url}/ui/login").text


def test_wrong_password_and_unknown_user_are_refused_alike(dashboard: Dashboard) -> None:
    for user, password in (("fin", "not-the-password"), ("nobody", "whatever-password")):
        r = httpx.post(f"{dashboard.url}/ui/login", data={"username": user, "password": password},
                       headers={"origin": dashboard.url})
        assert r.status_code == 401
        assert "unknown user or wrong password" in r.text
        assert "costplane_session" not in r.cookies


def test_login_from_another_origin_is_refused(dashboard: Dashboard) -> None:
    r = httpx.post(f"{dashboard.url}/ui/login", data={"username": "fin", "password": PASSWORDS["fin"]},
                   headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert "costplane_session" not in r.cookies


@pytest.mark.parametrize("who", ["root", "fin", "dev-a", "dev-b", "view-a"])
def test_every_page_renders_for_every_role(dashboard: Dashboard, who: str) -> None:
    with closing(login(dashboard, who)) as client:
        for path in PAGES:
            r = client.get(path)
            assert r.status_code == 200, (path, r.text[:2000])
            assert dashboard.app.bundle.revision in r.text  # the active bundle revision is on every page
            assert f"{who} · " in r.text


def test_finance_sees_every_team_and_a_developer_only_theirs(dashboard: Dashboard) -> None:
    with closing(login(dashboard, "fin")) as client:
        overview = client.get("/ui/").text
        assert 'data-team="alpha"' in overview and 'data-team="beta"' in overview
        runs = client.get("/ui/runs").text
        assert "run-alpha-1" in runs and "run-beta-1" in runs
    with closing(login(dashboard, "dev-a")) as client:
        for path in PAGES:
            text = client.get(path).text
            assert "beta" not in text, path  # no team, agent, run or budget of beta leaks onto any page
        assert 'data-team="alpha"' in client.get("/ui/").text
        assert client.get("/ui/runs/run-beta-1").status_code == 404
        assert client.get("/ui/breakdown?team=beta").status_code == 403


def test_breakdown_drills_from_team_to_agent_to_run(dashboard: Dashboard) -> None:
    with closing(login(dashboard, "fin")) as client:
        page = client.get("/ui/breakdown?team=alpha&by=agent").text
        assert 'data-agent="alpha-support"' in page and 'data-agent="alpha-triage"' in page
        assert "$0.56" in page  # alpha total: 0.12 + 0.31 + 0.09 + 0.04
        runs = client.get("/ui/breakdown?team=alpha&agent=alpha-support&by=run").text
        assert 'href="/ui/runs/run-alpha-1"' in runs and "run-alpha-3" not in runs
        tree = client.get("/ui/runs/run-alpha-1").text
        assert 'data-node="run-alpha-1-plan"' in tree and 'data-node="run-alpha-1-answer"' in tree
        assert "$0.43" in tree


def test_environment_buttons_follow_the_role(dashboard: Dashboard) -> None:
    with closing(login(dashboard, "fin")) as client:
        page = client.get("/ui/environments").text
        assert dashboard.env_id in page and 'name="teardown"' not in page
        r = client.post(f"/ui/environments/{dashboard.env_id}/teardown", headers={"origin": dashboard.url})
        assert r.status_code == 403
    with closing(login(dashboard, "dev-b")) as client:
        assert dashboard.env_id not in client.get("/ui/environments").text
        r = client.post(f"/ui/environments/{dashboard.env_id}/teardown", headers={"origin": dashboard.url})
        assert r.status_code in (403, 404)
    assert dashboard.app.store.get_environment(dashboard.env_id).state == "active"
    with closing(login(dashboard, "dev-a")) as client:
        page = client.get("/ui/environments").text
        assert 'name="teardown"' in page and 'name="extend"' in page
        refused = client.post(f"/ui/environments/{dashboard.env_id}/teardown", headers={"origin": "http://evil.example"})
        assert refused.status_code == 403
        r = client.post(f"/ui/environments/{dashboard.env_id}/extend", headers={"origin": dashboard.url})
        assert r.status_code == 303
        r = client.post(f"/ui/environments/{dashboard.env_id}/teardown", headers={"origin": dashboard.url},
                        follow_redirects=True)
        assert r.status_code == 200 and "teardown done" in r.text
    env = dashboard.app.store.get_environment(dashboard.env_id)
    assert env is not None and env.state == "torn_down" and env.extensions == 1


def test_logout_ends_the_session(dashboard: Dashboard) -> None:
    client = login(dashboard, "dev-a")
    assert client.get("/ui/budgets").status_code == 200
    r = client.post("/ui/logout", headers={"origin": dashboard.url})
    assert r.status_code == 303
    client.cookies.clear()
    stale = [t for t in dashboard.app.store.list_api_tokens(dashboard.app.store.user_by_name("dev-a").id)]
    assert stale and all(t.revoked_at is not None for t in stale)


def test_live_events_announce_a_new_cost_event(dashboard: Dashboard) -> None:
    client = login(dashboard, "dev-a")
    seen: list[str] = []
    opened = threading.Event()

    def listen() -> None:
        with client.stream("GET", "/ui/events", timeout=15) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                opened.set()
                seen.append(line)
                if line.startswith("event: refresh"):
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert opened.wait(10)
    dashboard.app.store.record_nodes([], [CostEvent(id="ev-live", ts=datetime.now(UTC), context=Context(team="alpha"),
                                                    provider="openai", model="gpt-4o-mini", cost_nano=1)])
    thread.join(10)
    assert "event: refresh" in seen
    client.close()


def test_vendored_assets_are_served_locally(dashboard: Dashboard) -> None:
    with closing(login(dashboard, "view-a")) as client:
        page = client.get("/ui/").text
        assert "http://" not in page.split("<body")[0] and "https://" not in page.split("<body")[0]  # no CDN
        htmx = client.get("/ui/static/vendor/htmx-2.0.11.min.js")
        assert htmx.status_code == 200 and "htmx" in htmx.text[:2000]
        assert client.get("/ui/static/app.css").status_code == 200


def test_a_developer_launches_from_a_blueprint(dashboard: Dashboard) -> None:
    with closing(login(dashboard, "dev-a")) as client:
        page = client.get("/ui/environments").text
        assert 'data-blueprint="notebook"' in page
        r = client.post("/ui/environments", data={"blueprint": "notebook"}, headers={"origin": dashboard.url},
                        follow_redirects=True)
        assert r.status_code == 200 and "launched (active)" in r.text
        bad = client.post("/ui/environments", data={"blueprint": "no-such"}, headers={"origin": dashboard.url})
        assert bad.status_code == 400 and "unknown blueprint" in bad.text
    launched = [e for e in dashboard.app.store.list_environments() if e.id != dashboard.env_id]
    assert len(launched) == 1
    assert launched[0].owner == "dev-a" and launched[0].context.team == "alpha"
    with closing(login(dashboard, "view-a")) as client:
        assert 'data-blueprint="notebook"' not in client.get("/ui/environments").text  # viewers may not launch
        r = client.post("/ui/environments", data={"blueprint": "notebook"}, headers={"origin": dashboard.url})
        assert r.status_code == 403
