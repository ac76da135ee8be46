"""The runtime scheduler: TTLs, expiry notices, accrual, idle rules and budget exhaustion.

Durable: everything it needs is in the store (`next_action_at` of each open environment),
so after a crash or restart the first tick finds every overdue action and runs it. Only
the leader acts: with PostgreSQL a session advisory lock (one replica holds it; it is
released when that replica's connection dies), with SQLite an exclusive `flock` on a file
next to the database (released by the OS when the process dies). Teardowns run on a
small thread pool, so a slow driver never delays the TTLs of other environments.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from costplane.core.environments import EnvironmentCore, RuntimeVerdict
from costplane.core.notify import Notification
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.lifecycle.drivers import DriverError
from costplane.lifecycle.leadership import Leadership

__all__ = ["Scheduler"]

log = logging.getLogger("costplane.scheduler")
_RUNNING = (EnvState.ACTIVE, EnvState.EXPIRING)
_SAMPLE_SECONDS = 5.0  # how often a driver's own metrics are read while an idle rule watches


class Scheduler:
    def __init__(self, core: EnvironmentCore, leadership: Leadership | None = None, *, workers: int = 8,
                 batch: int = 5000) -> None:
        self.core = core
        self.leadership = leadership
        self.batch = batch
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="costplane-teardown")
        self._inflight: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self.is_leader = leadership is None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
        if self.leadership is not None:
            self.leadership.release()

    def tick(self) -> int:
        """One pass over the due environments; returns how many were looked at. Blocking: run off the loop."""
        if self.leadership is not None and not self.is_leader:
            self.is_leader = self.leadership.acquire()
            if self.is_leader:
                log.info("this server now runs the environment scheduler")
        if not self.is_leader:
            return 0
        now = self.core.clock()
        due = self.core.store.due_environments(now, self.batch)
        for env in due:
            try:
                self._visit(env, now)
            except Exception:  # one environment's failure must not stop the others
                log.exception("scheduler failed on environment %s", env.id)
        return len(due)

    def _teardown_async(self, env: EnvironmentRecord, reason: str, verdict: RuntimeVerdict | None = None) -> None:
        with self._lock:
            running = self._inflight.get(env.id)
            if running is not None and not running.done():
                return
            self._inflight[env.id] = self._pool.submit(self._teardown, env.id, reason, verdict)

    def _teardown(self, env_id: str, reason: str, verdict: RuntimeVerdict | None) -> None:
        try:
            self.core.teardown(env_id, reason, hook="environment.runtime", verdict=verdict)
        finally:
            with self._lock:
                self._inflight.pop(env_id, None)

    def _visit(self, env: EnvironmentRecord, now: datetime) -> None:
        store = self.core.store
        if env.state == EnvState.PENDING:
            self.core.reject(env.id, env.context, "approval timed out")
            return
        if now >= env.expires_at:
            self._teardown_async(env, f"ttl expired at {env.expires_at.isoformat()}")
            store.update_environment(env.id, {"next_action_at": now + timedelta(seconds=5)})
            return
        if env.state == EnvState.SUSPENDED:
            store.update_environment(env.id, {"next_action_at": env.expires_at})
            return
        driver = self.core.drivers.get(str(env.driver.get("type")))
        if env.handle and not driver.alive(env.handle):
            self._teardown_async(env, "exited: the environment's work ended")
            store.update_environment(env.id, {"next_action_at": now + timedelta(seconds=5)})
            return
        life = env.lifecycle
        changes: dict[str, Any] = {}
        metrics = dict(env.metrics)
        idle_rule: Mapping[str, Any] | None = life.get("idle")
        if idle_rule and env.handle:
            try:
                for name, value in driver.metrics(env.handle).items():
                    metrics[name] = {"value": value, "at": now.isoformat(), "source": "driver"}
                    changes["metrics"] = metrics
            except DriverError as exc:
                log.warning("metrics of %s: %s", env.id, exc)
        idle_since = env.idle_since
        if idle_rule:
            reading = metrics.get(str(idle_rule["metric"]))
            below = Decimal(str(idle_rule["below"]))
            if isinstance(reading, Mapping) and Decimal(str(reading["value"])) < below:
                idle_since = idle_since or datetime.fromisoformat(str(reading["at"]))
            else:
                idle_since = None
            changes["idle_since"] = idle_since
            idle_for = (now - idle_since).total_seconds() if idle_since is not None else -1.0
            if idle_since is not None and idle_for >= int(idle_rule["for"]) and self._idle_action(
                    env, idle_rule, now, idle_since):
                return
        if not env.notice_sent and now >= env.expires_at - timedelta(seconds=int(life.get("notice") or 0)):
            left = int((env.expires_at - now).total_seconds())
            self.core.notifier.notify(Notification(
                "environment_expiring", env.id, f"environment {env.id} ({env.blueprint}, owner {env.owner or '?'}) "
                f"is torn down in {left}s at {env.expires_at.isoformat()}; extend it to keep it", env.decision_id))
            store.transition_environment(env.id, (EnvState.ACTIVE,), EnvState.EXPIRING, ts=now,
                                         reason=f"expiry notice: {left}s left", changes={"notice_sent": True})
            changes["notice_sent"] = True
        every = int(life.get("accrue_every") or 60)
        accrued_until = env.accrued_until or env.started_at or now
        if (now - accrued_until).total_seconds() >= every:
            self.core.accrue(env, now)
            accrued_until = now
            if self._runtime(env, now):
                return
        changes["next_action_at"] = self._next(env, now, accrued_until, idle_since, bool(changes.get("notice_sent")))
        store.update_environment(env.id, changes, states=_RUNNING)

    def _idle_action(self, env: EnvironmentRecord, rule: Mapping[str, Any], now: datetime,
                     since: datetime) -> bool:
        action = str(rule.get("action") or "teardown")
        why = (f"idle: {rule['metric']} below {rule['below']} since {since.isoformat()} "
               f"(rule: for {rule['for']}s)")
        if action == "teardown":
            self._teardown_async(env, why)
            self.core.store.update_environment(env.id, {"next_action_at": now + timedelta(seconds=5)})
            return True
        if action == "suspend":
            self._suspend(env, why, now)
            return True
        self.core.notifier.notify(Notification("environment_idle", env.id, why, env.decision_id))
        return False

    def _suspend(self, env: EnvironmentRecord, why: str, now: datetime, verdict: RuntimeVerdict | None = None) -> None:
        if env.handle:
            self.core.drivers.get(str(env.driver.get("type"))).teardown(env.handle, float(
                env.lifecycle.get("grace") or 10))
        self.core.accrue(env, now)
        record = self.core.runtime_record(verdict, env) if verdict is not None else None
        self.core.store.transition_environment(env.id, _RUNNING, EnvState.SUSPENDED, ts=now, reason=why,
                                               decision=record,
                                               changes={"next_action_at": env.expires_at, "handle": {}})

    def _runtime(self, env: EnvironmentRecord, now: datetime) -> bool:
        """Hook environment.runtime through the decision core (`EnvironmentCore.runtime`: its runtime
        policies and exhausted hard budgets). True if it acted."""
        verdict = self.core.runtime(env, now)
        if verdict is None:
            return False
        if verdict.action == "suspend":
            self._suspend(env, verdict.reason, now, verdict)
        else:
            self._teardown_async(env, verdict.reason, verdict)
        return True

    @staticmethod
    def _next(env: EnvironmentRecord, now: datetime, accrued_until: datetime, idle_since: datetime | None,
              noticed: bool) -> datetime:
        life = env.lifecycle
        candidates = [env.expires_at, accrued_until + timedelta(seconds=int(life.get("accrue_every") or 60))]
        if not (env.notice_sent or noticed):
            candidates.append(env.expires_at - timedelta(seconds=int(life.get("notice") or 0)))
        idle = life.get("idle")
        if idle:
            candidates.append(now + timedelta(seconds=_SAMPLE_SECONDS))
            if idle_since is not None:
                candidates.append(idle_since + timedelta(seconds=int(idle["for"])))
        if env.driver.get("type") == "process":  # notice a process that ended by itself
            candidates.append(now + timedelta(seconds=_SAMPLE_SECONDS))
        return max(now + timedelta(milliseconds=100), min(candidates))


