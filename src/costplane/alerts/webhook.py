"""Webhook delivery: a bounded queue filled on the request path, drained by a background job.

`WebhookNotifier.notify` runs wherever the core raises a notification (on a store thread,
inside a request): it only computes the de-duplication key and puts the alert on a bounded
queue — no I/O, never blocks; a full queue drops the alert and logs it. `drain()` — an
asyncio background job of the server — claims each alert's key in the store (the first
replica to claim it delivers; the others stay silent), then POSTs it to every webhook that
subscribed to its kind, on worker threads, retrying 5xx/429/network failures with
exponential backoff. Failures are logged; nothing here ever fails a request.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from costplane.alerts.dedup import dedup_key
from costplane.alerts.payload import slack_payload
from costplane.config import AlertsConfig, WebhookConfig
from costplane.core.notify import Notification, Notifier
from costplane.ledger.store import Store, StoreError
from costplane.policy.types import BudgetSpec

__all__ = ["CompositeNotifier", "WebhookError", "WebhookNotifier", "send_webhook"]

log = logging.getLogger("costplane.alerts")

_MAX_BACKOFF = 60.0


class WebhookError(RuntimeError):
    """A webhook could not be reached (connection refused, DNS, timeout)."""


def send_webhook(url: str, payload: Mapping[str, Any], timeout: float) -> int:
    """POST `payload` as JSON; returns the HTTP status (any), raises WebhookError when unreachable."""
    request = urllib.request.Request(url, data=orjson.dumps(payload), method="POST",
                                     headers={"content-type": "application/json", "user-agent": "costplane"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookError(f"{url}: {reason}") from exc


class CompositeNotifier:
    """Hands every notification to each notifier in turn (e.g. logging, then webhooks)."""

    def __init__(self, notifiers: Iterable[Notifier]) -> None:
        self.notifiers = tuple(notifiers)

    def notify(self, notification: Notification) -> None:
        for notifier in self.notifiers:
            notifier.notify(notification)


@dataclass(frozen=True, slots=True)
class _Queued:
    notification: Notification
    key: str | None
    raised_at: datetime


@dataclass(slots=True)
class _Delivery:
    webhook: WebhookConfig
    payload: Mapping[str, Any]
    attempt: int = 0
    next_at: float = 0.0


class WebhookNotifier:
    """A `Notifier` that delivers alerts to the configured webhooks, de-duplicated in the store."""

    def __init__(self, config: AlertsConfig, store: Store, budgets: Callable[[], Mapping[str, BudgetSpec]],
                 *, clock: Callable[[], datetime] = lambda: datetime.now(UTC), backoff: float = 1.0,
                 send: Callable[[str, Mapping[str, Any], float], int] = send_webhook) -> None:
        self.config = config
        self.store = store
        self._budgets = budgets
        self._clock = clock
        self._backoff = backoff
        self._send = send
        self._queue: queue.Queue[_Queued] = queue.Queue(maxsize=config.backlog)
        self._retrying: list[_Delivery] = []
        self._lock = threading.Lock()  # deliveries run on worker threads: counters and retries
        self.delivered = 0  # deliveries answered 2xx (per process; for tests and logs)
        self.failed = 0  # deliveries given up on
        self.dropped = 0  # alerts dropped because the backlog was full

    # -- the request path: no I/O ----------------------------------------------------------
    def notify(self, notification: Notification) -> None:
        if not any(notification.kind in hook.kinds for hook in self.config.webhooks):
            return
        now = self._clock()
        key = dedup_key(notification, self._budgets(), now, self.config.policy_repeat)
        try:
            self._queue.put_nowait(_Queued(notification, key, now))
        except queue.Full:
            self.dropped += 1
            log.warning("alert backlog full (%d): dropped %s %s", self.config.backlog, notification.kind,
                        notification.subject)

    @property
    def pending(self) -> int:
        """Alerts not yet claimed plus deliveries waiting for a retry."""
        return self._queue.qsize() + len(self._retrying)

    # -- the background job -------------------------------------------------------------------
    async def drain(self) -> None:
        """Claim queued alerts, deliver them and every retry that is due. Never raises."""
        fresh: list[_Queued] = []
        while True:
            try:
                fresh.append(self._queue.get_nowait())
            except queue.Empty:
                break
        due: list[_Delivery] = []
        if fresh:
            due += await asyncio.to_thread(self._claim, fresh)
        now = time.monotonic()
        with self._lock:
            due += [d for d in self._retrying if d.next_at <= now]
            self._retrying = [d for d in self._retrying if d.next_at > now]
        if due:
            await asyncio.gather(*(asyncio.to_thread(self._deliver, d) for d in due))

    def _claim(self, items: Sequence[_Queued]) -> list[_Delivery]:
        out: list[_Delivery] = []
        for item in items:
            n = item.notification
            if item.key is not None:
                try:
                    if not self.store.claim_alert(item.key, n.kind, n.subject, item.raised_at):
                        continue  # already raised (by this or another replica)
                except StoreError as exc:  # cannot de-duplicate now: keep it for the next drain
                    log.warning("alert %s not yet claimed (store: %s); will retry", item.key, exc)
                    self._requeue(item)
                    continue
            payload = slack_payload(n, item.key, item.raised_at)
            out += [_Delivery(hook, payload) for hook in self.config.webhooks if n.kind in hook.kinds]
        return out

    def _requeue(self, item: _Queued) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            log.error("alert %s %s dropped: backlog full", item.notification.kind, item.notification.subject)

    def _deliver(self, delivery: _Delivery) -> None:
        url = delivery.webhook.url
        try:
            status = self._send(url, delivery.payload, float(delivery.webhook.timeout))
            problem = None if 200 <= status < 300 else f"HTTP {status}"
            retry = status == 429 or status >= 500
        except WebhookError as exc:
            problem, retry = str(exc), True
        kind = delivery.payload.get("costplane", {}).get("kind")
        with self._lock:
            if problem is None:
                self.delivered += 1
                return
            if retry and delivery.attempt < self.config.retries and len(self._retrying) < self.config.backlog:
                delay = min(_MAX_BACKOFF, self._backoff * 2 ** delivery.attempt)
                delivery.attempt += 1
                delivery.next_at = time.monotonic() + delay
                self._retrying.append(delivery)
                log.warning("alert %s to %s failed (%s); retry %d in %.1fs", kind, url, problem, delivery.attempt,
                            delay)
                return
            self.failed += 1
        log.error("alert %s to %s failed after %d attempts: %s", kind, url, delivery.attempt + 1, problem)
