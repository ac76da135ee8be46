"""Application: the composition root. Owns the configuration, the store, the pricing catalog, the
loaded bundle and the services built from them, each built once, in order:

1. the notifier (logging, plus the alert webhooks when any is configured),
2. the catalogs (token prices now; environment SKUs on first use),
3. the SLO gate (breached economic SLOs, read from the store),
4. the decision core (handed the notifier and the SLO gate),
5. the environment adapter (`environments`: handed the decision core's one decider, so the same
   ledger, notifier and SLO gate decide every hook).

The parts that serve routes and jobs (server.py) receive these objects; nothing is patched onto an
object after it is built. No global state: the server, the CLI and tests each build their own.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

from costplane.alerts.webhook import CompositeNotifier, WebhookNotifier
from costplane.auth.authenticator import Authenticator
from costplane.config import Config
from costplane.core.bundle_state import ActiveBundle
from costplane.core.decision import DecisionCore
from costplane.core.environments import EnvironmentCore
from costplane.core.notify import LoggingNotifier, Notifier
from costplane.core.slo import SloGate
from costplane.gateway.translate.routes import route_issues
from costplane.ledger.contracts import BudgetLedger
from costplane.ledger.open import close_budget_ledger, open_budget_ledger, open_store
from costplane.ledger.store import Store
from costplane.lifecycle.drivers import DriverSet
from costplane.policy.bundle import Bundle, load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.revision import BundleSnapshot, read_snapshot
from costplane.policy.types import BundleError
from costplane.pricing.catalog import Catalog
from costplane.pricing.skus import SkuCatalog

__all__ = ["Application"]

log = logging.getLogger("costplane.app")

# how long a changed bundle must stay unchanged before it is loaded (see reload_if_changed)
RELOAD_SETTLE_SECONDS = 0.3


class Application:
    """`notifier`: where notifications go besides the webhooks (default: the `costplane.notify` log)."""

    def __init__(self, config: Config, store: Store | None = None, *, notifier: Notifier | None = None) -> None:
        self.config = config
        self.store = store if store is not None else open_store(config.store_url)
        self.store.migrate()
        loaded = self._load()
        self._seen = loaded.digest  # the content the active bundle was parsed from
        self.bundle = self._activate(loaded)
        # 1. one notifier for every part: the core, environments, SLOs, forecasts, anomalies
        base = notifier if notifier is not None else LoggingNotifier()
        self.webhooks: WebhookNotifier | None = None
        if config.alerts.webhooks:
            self.webhooks = WebhookNotifier(config.alerts, self.store, lambda: self.bundle.budgets)
        self.notifier: Notifier = base if self.webhooks is None else CompositeNotifier([base, self.webhooks])
        # 2. catalogs, 3. the SLO gate, 4. the decision core
        self.catalog = Catalog.load(config.pricing)
        self.slo_gate = SloGate(self.store)
        # the decision core's budget counters: the store, or lease-based budgets over it (ledger.leases)
        self.ledger: BudgetLedger = open_budget_ledger(config, self.store)
        self.core = DecisionCore(config, self.ledger, self.catalog, lambda: self.bundle, notifier=self.notifier,
                                 slo_gate=self.slo_gate, store=self.store)
        # 5. the one authenticator (one credential cache) of the gateway, both APIs and the dashboard
        self.auth = Authenticator(self.store)

    @functools.cached_property
    def environments(self) -> EnvironmentCore:
        """6. The environment adapter (built on first use: the CLI's commands mostly need none)."""
        return EnvironmentCore(self.store, SkuCatalog.load(self.config.pricing), lambda: self.bundle,
                               DriverSet(self.state_dir), decider=self.core.decider)

    @property
    def state_dir(self) -> Path:
        """Where drivers keep logs and terraform workspaces: next to costplane.yaml (or the working dir)."""
        base = self.config.path.parent if self.config.path is not None else Path.cwd()
        return base / ".costplane" / "environments"

    def _load(self, snapshot: BundleSnapshot | None = None) -> Bundle:
        if self.config.bundle is None:
            return Bundle.from_specs(revision="empty")
        bundle = load_bundle(self.config.bundle, snapshot)
        # a route to a model only untranslatable protocols serve is refused here, naming file and line
        issues = route_issues(self.config, bundle.policies, bundle.budgets)
        if issues:
            raise BundleError(issues)
        return bundle

    @staticmethod
    def _activate(bundle: Bundle) -> ActiveBundle:
        return ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})

    def reload_bundle(self, snapshot: BundleSnapshot | None = None) -> tuple[bool, str | None]:
        """Load the bundle again (from `snapshot`'s bytes when given) and swap it in whole; a bundle
        that fails keeps the old one.

        In-flight requests keep the bundle they started with, so nothing is dropped.
        """
        try:
            fresh = self._activate(self._load(snapshot))
        except BundleError as exc:
            log.error("bundle reload rejected, keeping revision %s:\n%s", self.bundle.revision, exc)
            return False, str(exc)
        changed = fresh.revision != self.bundle.revision
        self.bundle = fresh
        if changed:
            log.info("bundle reloaded: revision %s", fresh.revision)
        return changed, None

    def reload_if_changed(self, settle: float = RELOAD_SETTLE_SECONDS) -> bool:
        """Reload when the bundle's content changed and then stayed the same for ``settle`` seconds.

        An editor or ``write_text`` truncates a file before writing it; loading in that instant
        would swap in a bundle with that file's budgets and policies missing. So the files are read
        (not stat-ed: timestamps can be coarse or skewed), read again ``settle`` seconds later, and
        only content seen twice is loaded, from exactly those bytes. Content that keeps changing
        for ten settles is left for the next check.
        """
        root = self.config.bundle
        if root is None:
            return False
        snapshot = read_snapshot(root)
        if snapshot.digest == self._seen:
            return False
        give_up = time.monotonic() + 10 * settle
        while True:
            time.sleep(settle)
            again = read_snapshot(root)
            if again.digest == snapshot.digest:
                break
            snapshot = again
            if time.monotonic() >= give_up:
                return False
        changed, _ = self.reload_bundle(snapshot)
        self._seen = snapshot.digest  # an invalid bundle is logged once, not at every check
        return changed

    def close(self) -> None:
        close_budget_ledger(self.ledger)  # apply what is journaled, give the leases back, stop the feed
        self.store.close()
