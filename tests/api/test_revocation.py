"""Immediate revocation: a revoked key, a revoked API token, a disabled user and an ended dashboard
session are refused by the very next request — on every one of three `costplane serve` processes
sharing the store (PostgreSQL and SQLite), each of which had the credential cached a moment before.

And the authenticator itself (both stores): one cache for keys, tokens and sessions; a cached
credential is not looked up again until a revocation moves the store's credential generation.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from costplane.api.credentials import issue_token, new_user
from costplane.app import Application
from costplane.auth import Authenticator
from costplane.config import parse_config
from costplane.gateway.keys import create_key
from costplane.ledger.store import Store
from costplane.serving import BackgroundServer, free_port
from costplane.simulator.app import create_app
from costplane.simulator.config import SimulatorConfig
from costplane.web.session import COOKIE, end_session, start_session

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def _start(config: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "costplane", "serve", "--config", str(config), "--port",
                                str(port), "--log-level", "warning"], stdout=log.open("ab"), stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    for _ in range(600):  # up to a minute on a busy machine
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def servers(tmp_path: Path, store_url: Callable[[], str]) -> Iterator[tuple[Application, list[str]]]:
    with BackgroundServer(create_app(SimulatorConfig())) as simulator:
        data: dict[str, Any] = {"store": store_url(), "providers": {"openai": {
            "type": "openai", "base_url": f"{simulator.url}/v1", "models": ["gpt-*"]}}}
        config = tmp_path / "costplane.yaml"
        config.write_text(yaml.safe_dump(data))
        app = Application(parse_config(data, base=tmp_path))
        processes: list[subprocess.Popen[bytes]] = []
        try:
            urls = []
            for i in range(3):  # the three start side by side (the store is migrated already, by `app`)
                process, url = _start(config, tmp_path / f"server{i}.log")
                processes.append(process)
                urls.append(url)
            for i, (process, url) in enumerate(zip(processes, urls, strict=True)):
                _wait_healthy(process, url, tmp_path / f"server{i}.log")
            yield app, urls
        finally:
            for process in processes:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            app.close()


def _key_calls(url: str, secret: str) -> list[int]:
    headers = {"authorization": f"Bearer {secret}"}
    return [httpx.post(url + "/v1/chat/completions", json=CHAT, headers=headers, timeout=20).status_code,
            httpx.get(url + "/v1/environments", headers={"x-api-key": secret}, timeout=20).status_code,
            httpx.get(url + "/v1/runs", headers=headers, timeout=20).status_code]


def _whoami(url: str, secret: str) -> int:
    return httpx.get(url + "/api/v1/whoami", headers={"authorization": f"Bearer {secret}"}, timeout=20).status_code


def _page(url: str, session: str) -> int:
    return httpx.get(url + "/ui/", cookies={COOKIE: session}, timeout=20, follow_redirects=False).status_code


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
@pytest.mark.timeout(600)
def test_revocation_is_refused_by_the_next_request_on_every_process(
        servers: tuple[Application, list[str]]) -> None:
    app, urls = servers
    store = app.store
    key, record = create_key(store, "ci", {"team": "alpha"})
    admin = new_user(store, "root", "admin", password="correct horse")
    admin_token = issue_token(store, admin)[0]
    dev = new_user(store, "ana", "developer", ("alpha",), password="correct horse")
    dev_token, dev_record = issue_token(store, dev)
    other = new_user(store, "bo", "viewer", ("alpha",), password="correct horse")
    other_token = issue_token(store, other)[0]
    session = start_session(store, "bo", "correct horse", datetime.now(UTC))
    assert session is not None
    for _ in range(2):  # every process has every credential cached
        for url in urls:
            assert _key_calls(url, key) == [200, 200, 200]
            assert _whoami(url, dev_token) == _whoami(url, other_token) == 200
            assert _page(url, session) == 200

    # a key revoked through the API of process 0: refused at once by all three, on every surface
    revoked = httpx.delete(f"{urls[0]}/api/v1/keys/{record.id}",
                           headers={"authorization": f"Bearer {admin_token}"}, timeout=20)
    assert revoked.status_code == 200, revoked.text
    for url in urls:
        assert _key_calls(url, key) == [401, 401, 401]

    # an API token revoked (as `costplane users revoke` does): refused at once; the user's others still work
    assert store.revoke_api_token(dev_record.id, datetime.now(UTC))
    for url in urls:
        assert _whoami(url, dev_token) == 401 and _whoami(url, other_token) == 200

    # a dashboard session ended (logout): the next page on every process asks for a login
    who = Authenticator(store).session(session)
    assert who is not None
    end_session(store, who)
    for url in urls:
        assert _page(url, session) == 303
        assert _whoami(url, other_token) == 200

    # a user disabled: every token of theirs is refused at once
    assert store.disable_user(other.id, datetime.now(UTC))
    for url in urls:
        assert _whoami(url, other_token) == 401
    assert _whoami(urls[2], admin_token) == 200


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_one_cache_exact_under_revocation(store: Store) -> None:
    auth = Authenticator(store)
    key, record = create_key(store, "k", {"team": "alpha", "role": "approver"})
    user = new_user(store, "ana", "developer", ("alpha",))
    token, token_record = issue_token(store, user)
    principal = auth.principal(key)
    assert principal is not None and principal.kind == "key" and principal.role == "approver"
    assert principal.scope is not None and principal.may_read("alpha", None) and not principal.may_read("beta", None)
    assert auth.principal(token) is not None and auth.session(token) is not None
    assert auth.loads == 2  # one look-up each; every later resolution is a cache hit
    for _ in range(5):
        assert auth.key(key) == record and auth.principal(token) is not None
    assert auth.loads == 2
    assert auth.principal("cpk_unknown") is None and auth.principal("nonsense") is None
    assert auth.session(key) is None  # a key is never a dashboard session
    # another authenticator (another process) revokes: this one refuses at the very next call
    assert store.revoke_key(record.id, datetime.now(UTC))
    assert auth.key(key) is None and auth.principal(key) is None
    assert auth.principal(token) is not None  # reloaded, still valid
    assert store.revoke_api_token(token_record.id, datetime.now(UTC))
    assert auth.principal(token) is None
    generation = store.credentials_generation()
    assert not store.revoke_key(record.id, datetime.now(UTC))  # nothing changed: the generation stays
    assert store.credentials_generation() == generation
