"""Conformance of `AlertClaims`: one alert per dedup key across every process sharing the store."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ledger_helpers import NOW

from costplane.ledger import Store, open_store


def test_only_the_first_claim_of_a_key_wins(store: Store) -> None:
    assert store.claim_alert("budget:team-ml:80", "budget.threshold", "team ml at 80%", NOW) is True
    assert store.claim_alert("budget:team-ml:80", "budget.threshold", "team ml at 80%", NOW) is False
    assert store.claim_alert("budget:team-ml:100", "budget.threshold", "team ml at 100%", NOW) is True


def test_concurrent_claims_from_two_connections_elect_exactly_one(store_url: Callable[[], str]) -> None:
    url = store_url()
    first = open_store(url)
    first.migrate()
    second = open_store(url)
    wins: list[bool] = []
    lock = threading.Lock()

    def claim(s: Store, i: int) -> None:
        for k in range(20):
            won = s.claim_alert(f"key-{k}", "test", f"claimer {i}", NOW)
            with lock:
                wins.append(won)

    try:
        threads = [threading.Thread(target=claim, args=(s, i)) for i, s in enumerate((first, second, first, second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        first.close()
        second.close()
    assert len(wins) == 80 and sum(wins) == 20  # each of the 20 keys won once
