"""/metrics behind a bearer token: metrics.token_env (a secret read from the environment) or metrics.token;
401 without it, with a wrong one, or when the named variable is unset; open when neither is configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from costplane.app import Application
from costplane.config import ConfigError, parse_config
from costplane.server import create_server
from costplane.serving import BackgroundServer

SECRET = "scrape-secret-0123456789"


@contextmanager
def served(tmp_path: Path, metrics: dict[str, Any] | None) -> Iterator[str]:
    data: dict[str, Any] = {"store": f"sqlite:///{tmp_path}/m.db"}
    if metrics is not None:
        data["metrics"] = metrics
    app = Application(parse_config(data, base=tmp_path))
    server = BackgroundServer(create_server(app)).start()
    try:
        yield server.url
    finally:
        server.stop()
        app.close()


def _scrape(url: str, authorization: str | None = None) -> httpx.Response:
    headers = {"authorization": authorization} if authorization is not None else {}
    return httpx.get(f"{url}/metrics", headers=headers, timeout=10)


def test_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTPLANE_TEST_METRICS_TOKEN", SECRET)
    with served(tmp_path, {"token_env": "COSTPLANE_TEST_METRICS_TOKEN"}) as url:
        for authorization in (None, "Bearer", f"Bearer {SECRET}x", f"Basic {SECRET}", SECRET):
            refused = _scrape(url, authorization)
            assert refused.status_code == 401, authorization
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "costplane_" not in refused.text
        ok = _scrape(url, f"Bearer {SECRET}")
        assert ok.status_code == 200 and "costplane_open_reservations 0" in ok.text
        assert _scrape(url, f"bearer {SECRET}").status_code == 200  # the scheme is case-insensitive
    monkeypatch.delenv("COSTPLANE_TEST_METRICS_TOKEN")
    with served(tmp_path / "unset", {"token_env": "COSTPLANE_TEST_METRICS_TOKEN"}) as url:
        assert _scrape(url, "Bearer x").status_code == 401  # an unset variable refuses, never opens
        assert _scrape(url).status_code == 401


def test_token_in_the_file_and_open_by_default(tmp_path: Path) -> None:
    with served(tmp_path, {"token": SECRET}) as url:
        assert _scrape(url).status_code == 401
        assert _scrape(url, f"Bearer {SECRET}").status_code == 200
    with served(tmp_path / "open", None) as url:
        assert _scrape(url).status_code == 200


@pytest.mark.parametrize(("metrics", "field"), [
    ({"token": "short"}, "metrics.token"), ({"token_env": "not a name"}, "metrics.token_env"),
    ({"token_env": "X", "token": SECRET}, "metrics"), ({"bearer": SECRET}, "metrics.bearer"), ("yes", "metrics"),
])
def test_bad_metrics_settings_name_the_field(metrics: Any, field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field}: "):
        parse_config({"metrics": metrics})
