"""Application: owns the configuration, the store, the pricing catalog, the loaded bundle and the core.

No global state: the server, the CLI and tests each build their own Application.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from costplane.config import Config
from costplane.core.bundle_state import ActiveBundle
from costplane.core.decision import DecisionCore
from costplane.ledger.open import open_store
from costplane.ledger.store import Store
from costplane.policy.bundle import Bundle, load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.types import BundleError
from costplane.pricing.catalog import Catalog

__all__ = ["Application"]

log = logging.getLogger("costplane.app")


class Application:
    def __init__(self, config: Config, store: Store | None = None) -> None:
        self.config = config
        self.store = store if store is not None else open_store(config.store_url)
        self.store.migrate()
        self.catalog = Catalog.load(config.pricing)
        self._fingerprint = self._bundle_fingerprint()
        self.bundle = self._activate(self._load())
        self.core = DecisionCore(config, self.store, self.catalog, lambda: self.bundle)

    def _load(self) -> Bundle:
        if self.config.bundle is None:
            return Bundle.from_specs(revision="empty")
        return load_bundle(self.config.bundle)

    @staticmethod
    def _activate(bundle: Bundle) -> ActiveBundle:
        return ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})

    def reload_bundle(self) -> tuple[bool, str | None]:
        """Load the bundle again and swap it in whole; a bundle that fails keeps the old one.

        In-flight requests keep the bundle they started with, so nothing is dropped.
        """
        try:
            fresh = self._activate(self._load())
        except BundleError as exc:
            log.error("bundle reload rejected, keeping revision %s:\n%s", self.bundle.revision, exc)
            return False, str(exc)
        changed = fresh.revision != self.bundle.revision
        self.bundle = fresh
        if changed:
            log.info("bundle reloaded: revision %s", fresh.revision)
        return changed, None

    def reload_if_changed(self) -> bool:
        fingerprint = self._bundle_fingerprint()
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        changed, _ = self.reload_bundle()
        return changed

    def _bundle_fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        root = self.config.bundle
        if root is None or not root.is_dir():
            return ()
        entries = []
        for dirpath, _, files in os.walk(root):
            for name in files:
                if name.endswith((".yaml", ".yml")):
                    path = Path(dirpath, name)
                    stat = path.stat()
                    entries.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(entries))

    def close(self) -> None:
        self.store.close()
