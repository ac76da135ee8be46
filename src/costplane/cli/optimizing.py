"""What `policy replay`, `recommend` and `assess` share: the config's store, catalog and window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from costplane.cli.common import fail, load
from costplane.config import Config
from costplane.ledger import Store, open_store
from costplane.optimize.detectors.gpus import EnvironmentHistory, load_environments
from costplane.optimize.findings import DetectorInput
from costplane.optimize.history import History, load_history, parse_since
from costplane.pricing.catalog import Catalog
from costplane.pricing.skus import SkuCatalog

__all__ = ["Sources", "window"]


def window(since: str) -> tuple[datetime, datetime]:
    try:
        seconds = parse_since(since)
    except ValueError as exc:
        fail(str(exc), 2)
    until = datetime.now(UTC)
    return until - timedelta(seconds=seconds), until


def _sqlite_path(url: str) -> Path:
    return Path(url.split("?", 1)[0].removeprefix("sqlite:///"))


class Sources:
    """The configuration, its store (opened read-only in use: only list/query methods are called)
    and the price catalog."""

    def __init__(self, config_path: Path | None) -> None:
        self.config: Config = load(config_path)
        url = self.config.store_url
        if url.startswith("sqlite:") and not _sqlite_path(url).is_file():
            fail(f"no ledger at {url} (the store file does not exist); pass --config with the gateway's store")
        try:
            self.store: Store = open_store(self.config.store_url)
        except Exception as exc:  # any driver error becomes a one-line message
            fail(f"cannot open the store {self.config.store_url}: {exc}")
        self.catalog = Catalog.load(self.config.pricing)

    @property
    def inputs(self) -> DetectorInput:
        return DetectorInput(self.config, self.catalog)

    def history(self, since: str) -> History:
        start, end = window(since)
        return load_history(self.store, start, end)

    def environments(self, since: str) -> EnvironmentHistory:
        """The environments that ran in the window, for the GPU detectors."""
        start, end = window(since)
        return load_environments(self.store, start, end, SkuCatalog.load(self.config.pricing))

    def close(self) -> None:
        self.store.close()
