"""Policy replay's budget simulation: calendar bounds remembered per local day are exact (time zones,
DST), and a window holds what was settled in it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from costplane.ledger.types import BudgetClaim
from costplane.ledger.windows import Window
from costplane.optimize.budgetsim import BudgetSimulation, Refusal

ZONES = ("UTC", "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu", "America/Havana")


@pytest.mark.parametrize("calendar", ["day", "week", "month"])
def test_calendar_bounds_are_those_of_the_window_in_time_order_and_not(calendar: str) -> None:
    rng = random.Random(3)
    windows = [Window("calendar", calendar=calendar, timezone=zone) for zone in ZONES]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    instants = [start + timedelta(seconds=rng.randrange(2 * 365 * 86400)) for _ in range(1000)]
    # every hour of the two years: each DST change, and both passes of an ambiguous local midnight (Havana)
    instants += [start + timedelta(days=d, hours=h, minutes=30) for d in range(730) for h in range(24)]
    instants.sort()
    for order in (instants, rng.sample(instants, len(instants))):
        sim = BudgetSimulation()
        for at in order:
            for window in windows:
                assert sim.bounds(window, at) == window.bounds(at), (window, at)


def test_other_windows_are_not_remembered() -> None:
    sim = BudgetSimulation()
    rolling = Window("rolling", seconds=3600)
    at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert sim.bounds(rolling, at) == rolling.bounds(at) != rolling.bounds(at + timedelta(minutes=5))
    assert sim.bounds(rolling, at + timedelta(minutes=5)) == rolling.bounds(at + timedelta(minutes=5))
    assert sim.bounds(Window.lifetime(), at) == (0, 0)


def test_budget_windows_count_what_was_settled_in_them() -> None:
    """The simulation against a plain model of it: a window holds what was settled in its buckets."""
    rng = random.Random(5)
    windows = {"day": Window("calendar", calendar="day", timezone="Europe/Berlin"),
               "hour": Window("rolling", seconds=3600), "ever": Window.lifetime()}
    sim, settled = BudgetSimulation(), []  # settled: (budget, partition, bucket, cost)
    at = datetime(2026, 3, 28, tzinfo=UTC)
    for _ in range(1500):
        at += timedelta(seconds=rng.randrange(240))
        claims = []
        for name, window in windows.items():
            start, bucket = sim.bounds(window, at)
            claims.append(BudgetClaim(name, rng.choice(["", "run=r-1", "run=r-2"]), bucket, start,
                                      amount_nano=rng.randrange(100), limit_nano=rng.choice([None, 3000, 50_000]),
                                      limit_calls=rng.choice([None, 40])))
        expected = None
        for claim in claims:
            rows = [s for s in settled if s[:2] == (claim.budget, claim.partition) and s[2] >= claim.window_start]
            spent, calls = sum(s[3] for s in rows), len(rows)
            if claim.limit_nano is not None and spent + claim.amount_nano > claim.limit_nano:
                expected = Refusal(claim.budget, claim.partition, "amount", spent + claim.amount_nano,
                                   claim.limit_nano)
            elif claim.limit_calls is not None and calls + 1 > claim.limit_calls:
                expected = Refusal(claim.budget, claim.partition, "calls", spent, claim.limit_nano)
            if expected is not None:
                break
        assert sim.check(claims) == expected
        if expected is None:
            cost = rng.randrange(100)
            sim.settle(claims, cost)
            settled += [(c.budget, c.partition, c.bucket, cost) for c in claims]
