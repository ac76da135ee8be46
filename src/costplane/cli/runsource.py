"""Where `costplane runs|outcomes` read from: the store of costplane.yaml (or --store), or a
server's API (--api URL --key cpk_…). Both give the same JSON shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from costplane.cli.common import fail, load
from costplane.ledger.store import Store
from costplane.ledger.windows import WindowError, parse_duration

__all__ = ["API_OPTION", "KEY_OPTION", "STORE_OPTION", "Source", "since_option"]

API_OPTION = typer.Option(None, "--api", help="read from a costplane server instead, e.g. http://127.0.0.1:8080")
KEY_OPTION = typer.Option(None, "--key", envvar="COSTPLANE_KEY", help="costplane key for --api")
STORE_OPTION = typer.Option(None, "--store", help="store URL (default: the store of costplane.yaml)")


def since_option(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except WindowError as exc:
        fail(f"--since: {exc}")


class Source:
    def __init__(self, config: Path | None, store_url: str | None, api: str | None, key: str | None) -> None:
        self.api = api.rstrip("/") if api else None
        self.key = key
        self.store: Store | None = None
        if self.api is None:
            from costplane.ledger.open import open_store

            self.store = open_store(store_url or load(config).store_url)
            self.store.migrate()
        elif not key:
            fail("--api needs --key (or $COSTPLANE_KEY)")

    def get(self, path: str, **params: Any) -> Any:
        import httpx

        assert self.api is not None
        try:
            reply = httpx.get(self.api + path, params={k: v for k, v in params.items() if v is not None},
                              headers={"authorization": f"Bearer {self.key}"}, timeout=30)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.api}: {exc}")
        if reply.status_code == 404:
            return None
        if reply.status_code >= 300:
            fail(f"{self.api}{path}: HTTP {reply.status_code}: {reply.text[:300]}")
        return reply.json()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
