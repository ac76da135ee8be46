"""Dashboard hardening: the POST origin check against a configured public origin and Host allow-list, and
login throttling per user name and per client address with a message that says when to retry."""

from __future__ import annotations

import re
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from web_harness import PASSWORDS, Dashboard, serve_dashboard

from costplane.config import ConfigError, parse_config
from costplane.web.throttle import LoginThrottle


def _login(d: Dashboard, who: str, password: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{d.url}/ui/login", data={"username": who, "password": password, "next": "/ui/"},
                      headers={"origin": d.url, **headers}, timeout=10)


def test_throttle_per_user_name_and_per_address() -> None:
    t0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    throttle = LoginThrottle(limit=5, window=900)
    for i in range(5):
        assert throttle.check("Fin", "10.0.0.1", t0 + timedelta(seconds=i)) is None
        throttle.failed("Fin", "10.0.0.1", t0 + timedelta(seconds=i))
    refused = throttle.check("fin", "10.0.0.9", t0 + timedelta(minutes=1))  # name case-folded, another address
    assert refused is not None and refused.subject == "this user name"
    assert refused.retry_at == t0 + timedelta(minutes=15) and refused.retry_after == 14 * 60
    assert throttle.check("root", "10.0.0.1", t0 + timedelta(minutes=1)) is not None  # the address is blocked too
    assert throttle.check("root", "10.0.0.2", t0 + timedelta(minutes=1)) is None
    assert throttle.check("fin", "10.0.0.9", t0 + timedelta(minutes=15, seconds=1)) is None  # the first aged out
    # many names from one address: blocked by address; one name from many addresses: blocked by name
    spray = LoginThrottle(limit=3, window=60)
    for i in range(3):
        spray.failed(f"user{i}", "10.1.1.1", t0)
    assert spray.check("user9", "10.1.1.1", t0).subject == "this address"  # type: ignore[union-attr]
    throttle.succeeded("FIN")
    assert throttle.check("fin", "10.0.0.9", t0 + timedelta(minutes=2)) is None


def test_failed_logins_are_throttled_with_a_clear_message(dashboard: Dashboard) -> None:
    for _ in range(5):
        assert _login(dashboard, "fin", "wrong-password").status_code == 401
    refused = _login(dashboard, "fin", PASSWORDS["fin"])  # even the right password, until the window passes
    assert refused.status_code == 429 and "costplane_session" not in refused.cookies
    assert "too many failed logins" in refused.text and "try again after" in refused.text
    assert "UTC (in 15 minutes)" in refused.text and int(refused.headers["retry-after"]) > 14 * 60
    other = _login(dashboard, "root", PASSWORDS["root"])  # the same address: refused as well
    assert other.status_code == 429 and "this address" in other.text


def test_configured_public_origin_and_allowed_hosts(tmp_path: Path) -> None:
    server = {"public_url": "https://costplane.example.com", "allowed_hosts": ["127.0.0.1"]}
    with serve_dashboard(tmp_path, server=server) as d:
        host = d.url.split("//", 1)[1]
        ok = _login(d, "fin", PASSWORDS["fin"], origin="https://costplane.example.com")
        assert ok.status_code == 303 and "costplane_session" in ok.cookies
        assert "secure" in ok.headers["set-cookie"].lower()  # the public origin is https
        spoofed = _login(d, "fin", PASSWORDS["fin"], origin="http://evil.example", host="evil.example")
        assert spoofed.status_code == 400 and "allowed_hosts" in spoofed.text  # Host not on the list
        own_host = _login(d, "fin", PASSWORDS["fin"], origin=f"http://{host}")  # an allowed host (any port)
        assert own_host.status_code == 303
        evil = _login(d, "fin", PASSWORDS["fin"], origin="https://evil.example")  # Host fine, Origin foreign
        assert evil.status_code == 403 and "costplane_session" not in evil.cookies
        with closing(httpx.Client(base_url=d.url, timeout=10, cookies={"costplane_session":
                                                                       ok.cookies["costplane_session"]})) as client:
            assert client.get("/ui/budgets").status_code == 200
            assert client.get("/ui/budgets", headers={"host": "rebound.example"}).status_code == 400
            refused = client.post("/ui/logout", headers={"origin": "https://evil.example"})
            assert refused.status_code == 403
            done = client.post("/ui/logout", headers={"origin": "https://costplane.example.com"})
            assert done.status_code == 303


@pytest.mark.parametrize(("server", "field"), [
    ({"public_url": "costplane.example.com"}, "server.public_url"),
    ({"public_url": "https://costplane.example.com/ui"}, "server.public_url"),
    ({"allowed_hosts": "costplane.example.com"}, "server.allowed_hosts"),
    ({"allowed_hosts": ["ok.example", "bad host"]}, "server.allowed_hosts[1]"),
    ({"login_max_failures": 0}, "server.login_max_failures"),
    ({"login_window": "forever"}, "server.login_window"),
])
def test_bad_settings_name_the_field(server: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(field) + ": "):
        parse_config({"server": server})
