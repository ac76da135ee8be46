"""The thread behind a loop filter's feed (ledger/loopfeed.py on PostgreSQL, ledger/looppoll.py on
SQLite): started once, on demand; `ready` while the filter holds every call committed so far (up to
the feed's own delay); stopped by `close`. A feed subclasses it and implements `_run`, which loops
until `_stop` is set and sets or clears `_ready`."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from costplane.ledger.loopfilter import LoopFilter

__all__ = ["FeedThread"]


class FeedThread(ABC):
    """A daemon thread feeding `filter` (see the module doc)."""

    def __init__(self, loops: LoopFilter) -> None:
        self.filter = loops
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    @property
    def ready(self) -> bool:
        """True while every call committed so far (up to the feed's own delay) is in the filter."""
        return self._ready.is_set()

    def start(self) -> FeedThread:
        """Start the thread (once; later calls do nothing)."""
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="costplane-loop-feed", daemon=True)
                self._thread.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def close(self) -> None:
        """Stop the thread (it sees `_stop` within one of its waits)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    @abstractmethod
    def _run(self) -> None:
        """Follow the store until `_stop` is set."""
