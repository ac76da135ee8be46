"""The budget ledger, differentially: the same random operation sequences run against SQLite,
PostgreSQL (server-side functions, and the multi-statement path) and the in-memory ledger; every
result and every counter is compared after every step.

Operations: reserve (one to three claims, some on the same window), settle (new or repeated event
ids, after release or expiry too), release / expire by hand, grow, accrue (closing or not), the
expiry sweep, record_event, record_spend (past limits, repeated ids in one batch), the loop guard's
count — over four budgets (lifetime, rolling, calendar day in a zone with DST, a soft one), three
partitions and a clock that moves by seconds to days. Each example works in its own names (budgets,
runs, ids) on the shared SQL stores and a fresh in-memory ledger, and gives back whatever it left
open, so examples do not see each other.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costplane.attribution.context import Context
from costplane.ledger import BudgetClaim, CostEvent, DecisionRecord, Reservation, Window, open_store
from costplane.ledger.contracts import BudgetLedger
from costplane.ledger.memory import MemoryLedger
from costplane.ledger.postgres import PostgresStore
from costplane.pricing.types import TokenUsage
from store_fixtures import pg_schema, require_postgres

START = datetime(2025, 3, 29, 23, 58, 30, tzinfo=UTC)  # a minute before a Paris day ends, DST that night


@dataclass(frozen=True)
class Budget:
    name: str
    window: Window
    limit_nano: int | None
    limit_calls: int | None = None
    limit_concurrent: int | None = None
    hard: bool = True


BUDGETS = (
    Budget("life", Window.lifetime(), 4_000, limit_calls=3, limit_concurrent=4),
    Budget("roll", Window("rolling", seconds=120), 3_000, limit_calls=3),
    Budget("day", Window("calendar", calendar="day", timezone="Europe/Paris"), 3_500, limit_concurrent=2),
    Budget("soft", Window.lifetime(), 2_000, limit_calls=3, limit_concurrent=1, hard=False),
)
PARTITIONS = ("", "run=r1", "run=r2")
LATEST = 99  # the reservation index that means "the one just made"
STEPS = (0, 1, 30, 61, 119, 3_600, 86_400)

# -- the operations (indices into what the example has created so far, resolved when run) ----------
amounts = st.one_of(st.sampled_from((0, 700, 1_500, 2_500)), st.integers(0, 2_500))
claim_spec = st.tuples(st.integers(0, len(BUDGETS) - 1), st.integers(0, len(PARTITIONS) - 1), amounts)
event_spec = st.tuples(st.integers(0, 3_000), st.integers(-1, 6), st.integers(0, 2), st.integers(0, 2))
ops = st.one_of(
    st.tuples(st.just("clock"), st.sampled_from(STEPS)),
    st.tuples(st.just("reserve"), st.lists(claim_spec, min_size=0, max_size=3), st.sampled_from((30, 300, 7_200))),
    st.tuples(st.just("reserve"), st.lists(claim_spec, min_size=1, max_size=2), st.just(300)),
    st.tuples(st.just("settle"), st.integers(-1, 8), event_spec),
    st.tuples(st.just("release"), st.integers(-1, 8), st.sampled_from(("released", "expired", "settled"))),
    st.tuples(st.just("grow"), st.integers(-1, 8), st.integers(-1, 2_000), st.sampled_from((60, 600))),
    st.tuples(st.just("accrue"), st.integers(-1, 8), event_spec, st.booleans(), st.booleans()),
    st.tuples(st.just("expire")),
    st.tuples(st.just("event"), event_spec, st.lists(claim_spec, max_size=2)),
    st.tuples(st.just("spend"), st.lists(st.tuples(event_spec, st.lists(claim_spec, max_size=2), st.booleans()),
                                         min_size=1, max_size=3)),
    st.tuples(st.just("count"), st.integers(0, 2), st.integers(0, 2), st.sampled_from((0, 60, 3_600, 10**6))),
)
# a burst: the same claims reserved several times in a row (calls and concurrency limits)
small_claim = st.tuples(st.integers(0, len(BUDGETS) - 1), st.integers(0, len(PARTITIONS) - 1), st.integers(0, 900))
bursts = st.tuples(st.lists(small_claim, min_size=1, max_size=2), st.integers(2, 5)).map(
    lambda spec: [("reserve", spec[0], 300)] * spec[1])
# a late settlement: released (or expired) by hand, then settled all the same
late = st.tuples(st.integers(0, 8), st.sampled_from(("released", "expired")), event_spec).map(
    lambda spec: [("release", spec[0], spec[1]), ("settle", spec[0], spec[2])])
# a reservation accrued right away, often for more than it holds
accruals = st.tuples(st.lists(small_claim, min_size=1, max_size=2), st.integers(0, 3_000), st.booleans()).map(
    lambda spec: [("reserve", spec[0], 7_200), ("accrue", LATEST, (spec[1], -1, 0, 0), spec[2], True)])
# time passes, then the expiry sweep
sweeps = st.sampled_from((31, 301, 7_201)).map(lambda seconds: [("clock", seconds), ("expire",)])
programs = st.lists(st.one_of(ops.map(lambda op: [op]), bursts, late, accruals, sweeps), min_size=10, max_size=30).map(
    lambda chunks: [op for chunk in chunks for op in chunk])


@dataclass
class Run:
    """One example: its names, its clock, and what it has created so far."""

    ns: str
    now: datetime = START
    reservations: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    serial: Iterator[int] = field(default_factory=itertools.count)

    def claim(self, spec: tuple[int, int, int]) -> BudgetClaim:
        budget, partition, amount = BUDGETS[spec[0]], PARTITIONS[spec[1]], spec[2]
        window_start, bucket = budget.window.bounds(self.now)
        return BudgetClaim(f"{self.ns}-{budget.name}", partition, bucket, window_start, amount, budget.limit_nano,
                           budget.limit_calls, budget.limit_concurrent, budget.hard)

    def reservation(self, index: int) -> str:
        """The index-th reservation of this example; LATEST: the last one; out of range: an unknown id."""
        if index == LATEST and self.reservations:
            return self.reservations[-1]
        return self.reservations[index] if 0 <= index < len(self.reservations) else f"{self.ns}-res-missing"

    def event(self, spec: tuple[int, int, int, int]) -> CostEvent:
        cost, reuse, run, request = spec
        if 0 <= reuse < len(self.events):
            eid = self.events[reuse]  # the same id again: ignored by every ledger
        else:
            eid = f"{self.ns}-evt-{next(self.serial)}"
            self.events.append(eid)
        return CostEvent(id=eid, ts=self.now, context=Context(team="ml", run=(None, f"{self.ns}-r1",
                                                                           f"{self.ns}-r2")[run]),
                         provider="openai", model="gpt-4o", cost_nano=cost, usage=TokenUsage(10, 5),
                         request_hash=(None, "h1", "h2")[request])

    def decision(self) -> DecisionRecord:
        return DecisionRecord(id=f"{self.ns}-dec-{next(self.serial)}", ts=self.now, hook="llm.request",
                              effect="allow", bundle_revision="sha256:test", context=Context(team="ml"),
                              input={}, result={})

    def all_claims(self) -> list[BudgetClaim]:
        return [self.claim((b, p, 0)) for b in range(len(BUDGETS)) for p in range(len(PARTITIONS))]


def outcome(call: Callable[[], Any]) -> Any:
    """A result, or the kind of error raised (messages differ between backends; kinds must not)."""
    try:
        return call()
    except (ValueError, RuntimeError) as exc:
        return ("raised", type(exc).__name__)


def step(ledger: BudgetLedger, run: Run, op: tuple[Any, ...], prepared: Any) -> Any:
    kind = op[0]
    if kind == "reserve":
        reservation, decision = prepared
        return outcome(lambda: ledger.reserve(reservation, decision))
    if kind == "settle":
        return outcome(lambda: ledger.settle(prepared[0], prepared[1]))
    if kind == "release":
        return outcome(lambda: ledger.release(prepared, op[2]))
    if kind == "grow":
        rid, extra, expires, decision = prepared
        return outcome(lambda: ledger.grow_reservation(rid, extra, expires, decision))
    if kind == "accrue":
        rid, event, close, decision = prepared
        return outcome(lambda: ledger.accrue(rid, event, close=close, decision=decision))
    if kind == "expire":
        return ledger.expire_reservations(run.now)
    if kind == "event":
        return ledger.record_event(prepared[0], prepared[1])
    if kind == "spend":
        return ledger.record_spend(*prepared)
    if kind == "count":
        return ledger.count_recent_requests(*prepared)
    raise AssertionError(kind)


def prepare(run: Run, op: tuple[Any, ...]) -> Any:
    """The records an operation sends, built once so every ledger gets the same ones."""
    kind = op[0]
    if kind == "reserve":
        rid = f"{run.ns}-res-{next(run.serial)}"
        run.reservations.append(rid)
        decision = run.decision()
        claims = tuple(run.claim(spec) for spec in op[1])
        return Reservation(rid, claims, run.now, run.now + timedelta(seconds=op[2]), decision.id), decision
    if kind == "settle":
        return run.reservation(op[1]), run.event(op[2])
    if kind == "release":
        return run.reservation(op[1])
    if kind == "grow":
        return run.reservation(op[1]), op[2], run.now + timedelta(seconds=op[3]), run.decision()
    if kind == "accrue":
        return run.reservation(op[1]), run.event(op[2]), op[3], run.decision() if op[4] else None
    if kind == "event":
        return run.event(op[1]), [run.claim(spec) for spec in op[2]]
    if kind == "spend":
        events = [run.event(e) for e, _, _ in op[1]]
        return events, [[run.claim(spec) for spec in claims] for _, claims, _ in op[1]], [
            run.decision() if logged else None for _, _, logged in op[1]]
    if kind == "count":
        return (f"{run.ns}-r{op[1]}", ("h0", "h1", "h2")[op[2]], run.now - timedelta(seconds=op[3]))
    return None


@pytest.fixture(scope="module")
def sql_ledgers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, BudgetLedger]]:
    """SQLite, and PostgreSQL twice (server-side functions; the multi-statement path) when reachable."""
    with ExitStack() as stack:
        path: Path = tmp_path_factory.mktemp("differential") / "ledger.db"
        ledgers: dict[str, Any] = {"sqlite": open_store(f"sqlite:///{path}")}
        try:
            require_postgres()
        except pytest.skip.Exception:
            pass
        else:
            ledgers["postgres"] = open_store(stack.enter_context(pg_schema("cp_diff")))
            multi = open_store(stack.enter_context(pg_schema("cp_diff")))
            assert isinstance(multi, PostgresStore)
            multi.use_functions = False
            ledgers["postgres-statements"] = multi
        for opened in ledgers.values():
            opened.migrate()
            stack.callback(opened.close)
        yield ledgers


EXAMPLES = 45  # about 20 s on both PostgreSQL paths, whose commits dominate
DIFFERENTIAL = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@DIFFERENTIAL
@given(program=programs)
def test_every_ledger_keeps_the_same_counters(sql_ledgers: dict[str, BudgetLedger], program: list[Any]) -> None:
    run = Run(ns=f"x{uuid.uuid4().hex[:10]}")
    ledgers: dict[str, BudgetLedger] = {"memory": MemoryLedger(), **sql_ledgers}
    try:
        for number, op in enumerate(program):
            if op[0] == "clock":
                run.now += timedelta(seconds=op[1])
                continue
            prepared = prepare(run, op)
            results = {name: step(ledger, run, op, prepared) for name, ledger in ledgers.items()}
            expected = results.pop("memory")
            for name, got in results.items():
                assert got == expected, f"step {number} {op[0]}: {name} returned {got!r}, memory {expected!r}"
            claims = run.all_claims()
            counters = {name: ledger.claim_states(claims) for name, ledger in ledgers.items()}
            expected_counters = counters.pop("memory")
            for name, got in counters.items():
                assert got == expected_counters, f"step {number} {op[0]}: {name} counters differ from memory"
        for rid in run.reservations:
            held = {name: ledger.get_reservation(rid) for name, ledger in ledgers.items()}  # type: ignore[attr-defined]
            assert len(set(map(repr, held.values()))) == 1, f"reservation {rid} differs: {held}"
    finally:
        for ledger in sql_ledgers.values():  # give back what this example left open
            for rid in run.reservations:
                ledger.release(rid)


def test_the_differential_programs_reach_every_outcome() -> None:
    """The generated programs are not vacuous: on the in-memory ledger, a fixed sample of them admits,
    refuses on each of the three limits, settles after expiry and ignores a repeated event id."""
    seen: set[str] = set()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
    @given(program=programs)
    def sample(program: list[Any]) -> None:
        run, ledger = Run(ns="m"), MemoryLedger()
        for op in program:
            if op[0] == "clock":
                run.now += timedelta(seconds=op[1])
                continue
            before = {rid: (r.status if (r := ledger.get_reservation(rid)) else None) for rid in run.reservations}
            prepared = prepare(run, op)
            result = step(ledger, run, op, prepared)
            if op[0] == "reserve":
                seen.add("admitted" if result.ok else f"refused:{result.refused_limit}")
            elif op[0] == "settle" and before.get(prepared[0]) in ("released", "expired"):
                seen.add("settled after release")
            elif op[0] == "event" and result is False:
                seen.add("repeated event ignored")
            elif op[0] == "expire" and result:
                seen.add("expired")

    sample()
    assert {"admitted", "refused:amount", "refused:calls", "refused:concurrent", "settled after release",
            "repeated event ignored", "expired"} <= seen, seen


def test_the_memory_ledger_logs_decisions_as_the_stores_do() -> None:
    """Beyond the counters: a refused reservation logs nothing, the first decision of an id wins, an
    event observed twice is counted once by the loop guard, and a replay can drop what it has read."""
    run, ledger = Run(ns="d"), MemoryLedger()
    full = run.claim((1, 0, 3_000))  # the rolling budget's whole limit
    first, decision = prepare(run, ("reserve", [(1, 0, 3_000)], 300))
    assert ledger.reserve(first, decision).ok
    refused, denied = prepare(run, ("reserve", [(1, 0, 1)], 300))
    outcome = ledger.reserve(refused, denied)
    assert not outcome.ok and outcome.refused_limit == "amount" and outcome.refused is not None
    assert outcome.refused.reserved_nano == full.amount_nano + 1
    assert ledger.get_decision(denied.id) is None and ledger.get_reservation(refused.id) is None
    assert ledger.count_decisions() == 1
    ledger.record_decision(replace(decision, effect="deny"))
    kept = ledger.get_decision(decision.id)
    assert kept is not None and kept.effect == "allow"  # the first record of an id stays
    event = run.event((10, -1, 1, 1))
    assert ledger.record_event(event) and not ledger.record_event(event)
    assert ledger.count_recent_requests(f"{run.ns}-r1", "h1", run.now) == 1 == ledger.count_events()
    assert ledger.pop_decision(decision.id) == kept and ledger.get_decision(decision.id) is None
    assert ledger.count_decisions() == 1  # still logged: the same id again is still ignored
    lean = MemoryLedger(keep_decisions=False)
    lean.record_decision(decision)
    assert lean.get_decision(decision.id) is None and lean.count_decisions() == 1
    forgetful = MemoryLedger(forget_settled=True)
    held, logged = prepare(run, ("reserve", [(0, 0, 100)], 300))
    assert forgetful.reserve(held, logged).ok
    (after,) = forgetful.settle(held.id, run.event((40, -1, 0, 0)))
    assert (after.spent_nano, after.reserved_nano, after.calls, after.concurrent) == (40, 0, 1, 0)
    assert forgetful.get_reservation(held.id) is None and forgetful.open_reservations() == 0
