"""A deterministic (seeded) synthetic `llm.request` history with waste patterns of KNOWN size.

`generate(spec, catalog)` returns decision records and cost events shaped exactly like the decision
core's (same input/result keys, costs from the Catalog at each call's time), plus `known`: the
saving each planted pattern represents, computed from the generator's own parameters:

* `model_oversizing` — agent `triage-bot` (team support) sends `oversized_calls` short requests
  (input 200–900, output 40–300 tokens) to gpt-4o while it also uses gpt-4o-mini; known saving =
  those calls re-priced on gpt-4o-mini;
* `cache_opportunity` — agent `faq-bot` (team support) asks `faq_questions` distinct deterministic
  questions (temperature 0) each 3–8 times within 20 minutes; known saving = the cost of every
  repeat (all of them are inside the default 1 h cache TTL).

Four agent patterns are off by default (`SyntheticSpec.all_patterns()` turns every pattern on); each
draws from its own seeded random stream, so switching one on changes no other figure:

* `prompt_inflation` — agent `kb-assistant` (team support, gpt-4o): input tokens rise linearly by
  `inflation_growth` over the window; known saving = the added tokens priced at gpt-4o's input rate;
* `inference_amplification` — agent `claims-agent` (team claims, gpt-4o): calls per run rise from 3
  to 3 + `amplification_growth`; known saving = the cost of every run's calls beyond the third;
* `agent_chatter` — agent `crawler` (team ml, gpt-4o): runs of 3-5 distinct steps, half of them
  then repeat their last request 4-12 times; known saving = the cost of the repeats;
* `tier_leakage` — experiment-tier traffic (team ml, no agent) on claude-3-5-sonnet while the
  provider's claude-3-5-haiku serves production; known saving = those calls re-priced on haiku.

Two more patterns are opt-in by name (`all_patterns()` leaves them off, so its set of figures stays
the same; pass `embeddings=True, gpus=True`), each from its own seeded stream too:

* `duplicate_embeddings` — pipeline `reindex` (team search) re-embeds `embedded_documents` documents
  (text-embedding-3-large) on 2-6 nights at the same time of day (repeats a day or more apart, so
  outside the 1 h cache TTL); agent `search-api` embeds distinct queries (its control); known saving
  = the cost of every re-embedding;
* `idle_gpu_environments` / `oversized_gpu_environments` — environment records (`environments`,
  stored by `write`): blueprint `notebook-a100` (1 × aws/gpu/A100-80GB) environments whose latest
  `gpu_util` reading is below 5 % for their last 2-10 h; blueprint `finetune-a100` (2 × A100-80GB,
  busy) whose latest `gpu_memory_gb` reading is 8-14 GB, so an L4 (24 GB) fits; blueprint
  `train-h100` (busy, 60-75 GB) is their control. Known savings = the idle hours at the hourly price;
  the finetune run time re-priced on aws/gpu/L4.

One more opt-in pattern (`outcome_amplification=True`; `all_patterns()` leaves it off), from its
own seeded stream, with outcome records (`outcomes`, stored by `write`):

* `inference_amplification_per_outcome` — agent `underwriter` (team risk, gpt-4o) makes 4 calls in
  every run, but ever fewer runs end in an `application_decided` outcome (1 / (1 + x) of them at
  time x of the window), so calls per outcome rise from 4 to 8; agent `quoter` (90 % of its runs end
  in `quote_sent`) is its control; known saving = the cost of the underwriter's runs without an outcome.

The control traffic (always present) must raise no finding: agents that use one model, or a large
model only for long prompts, non-deterministic repeats (temperature 0.7), unique deterministic
requests. `write(store, history)` stores it (decisions one by one, events in one transaction).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from costplane.attribution.context import Context
from costplane.config import Config, ProviderConfig
from costplane.ledger.contracts_admin import Environments
from costplane.ledger.contracts_records import DecisionLog, RunLedger
from costplane.ledger.envtypes import EnvironmentRecord, EnvState
from costplane.ledger.runtypes import OutcomeRecord
from costplane.ledger.types import CostEvent, DecisionRecord
from costplane.pricing.catalog import Catalog
from costplane.pricing.skus import SkuCatalog
from costplane.pricing.types import TokenUsage

__all__ = ["HistorySink", "SyntheticHistory", "SyntheticSpec", "generate", "synthetic_config", "write"]

REVISION = "synthetic"


def synthetic_config() -> Config:
    """Two providers (OpenAI and Anthropic protocol) priced as genai-prices' openai / anthropic."""
    return Config(path=None, providers=(
        ProviderConfig(name="openai", type="openai", base_url="http://127.0.0.1:9/v1",
                       models=("gpt-*", "text-embedding-*"), pricing_provider="openai"),
        ProviderConfig(name="anthropic", type="anthropic", base_url="http://127.0.0.1:9/v1",
                       models=("claude-*",), pricing_provider="anthropic"),
    ))


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    seed: int = 7
    start: datetime = datetime(2025, 3, 1, tzinfo=UTC)
    days: int = 30
    control_calls: int = 600  # per control agent
    oversizing: bool = True
    oversized_calls: int = 1000
    cache: bool = True
    faq_questions: int = 40
    inflation: bool = False
    inflation_calls: int = 800
    inflation_growth: int = 3000  # input tokens added per request from the start to the end of the window
    amplification: bool = False
    amplification_runs: int = 300
    amplification_growth: int = 6  # calls per run added from the start to the end of the window
    chatter: bool = False
    chatter_runs: int = 200
    leakage: bool = False
    leaked_calls: int = 600
    embeddings: bool = False
    embedded_documents: int = 400
    gpus: bool = False
    gpu_environments: int = 30  # per GPU blueprint
    outcome_amplification: bool = False
    outcome_runs: int = 3000  # per outcome agent (~100 runs a day: daily ratios steady enough to fit)

    @classmethod
    def all_patterns(cls, **values: Any) -> SyntheticSpec:
        """A spec with every planted pattern on (the four agent patterns are off by default)."""
        return cls(**{"inflation": True, "amplification": True, "chatter": True, "leakage": True, **values})


@dataclass(frozen=True, slots=True)
class SyntheticHistory:
    start: datetime
    end: datetime
    decisions: tuple[DecisionRecord, ...]
    events: tuple[CostEvent, ...]
    known: Mapping[str, int] = field(default_factory=dict)  # pattern -> saving over the history, nano-USD
    environments: tuple[EnvironmentRecord, ...] = ()
    outcomes: tuple[OutcomeRecord, ...] = ()  # business results (per-outcome amplification)


class _Builder:
    def __init__(self, spec: SyntheticSpec, catalog: Catalog) -> None:
        self.spec = spec
        self.catalog = catalog
        self.rng = random.Random(spec.seed)
        self.decisions: list[DecisionRecord] = []
        self.events: list[CostEvent] = []
        self.outcomes: list[OutcomeRecord] = []
        self.seq = 0

    def when(self) -> datetime:
        return self.spec.start + timedelta(seconds=self.rng.randrange(self.spec.days * 86400 - 3600))

    def call(self, ts: datetime, ctx: Context, model: str, input_tokens: int, output_tokens: int, *,
             prompt: str | None = None, temperature: float = 0.7) -> int:
        """Record one admitted call; returns its cost."""
        self.seq += 1
        provider = "anthropic" if model.startswith("claude") else "openai"
        protocol = provider
        endpoint = "messages" if provider == "anthropic" else "chat.completions"
        body = prompt if prompt is not None else f"request-{self.spec.seed}-{self.seq}"
        exact = hashlib.sha256(f"{model}|{body}|{temperature}".encode()).hexdigest()
        deterministic = temperature == 0
        usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens)
        sheet = self.catalog.resolve(model, provider, ts)
        cost = sheet.cost_nano(usage)
        decision_id = f"dec_syn{self.spec.seed}_{self.seq:08d}"
        params: dict[str, Any] = {"temperature": temperature}
        self.decisions.append(DecisionRecord(
            id=decision_id, ts=ts, hook="llm.request", effect="allow", bundle_revision=REVISION, context=ctx,
            input={"endpoint": endpoint, "model": model, "input_tokens_bound": input_tokens + 64,
                   "input_tokens_estimate": input_tokens, "max_tokens": 1024, "stream": False,
                   "request_hash": exact, "protocol": protocol, "params": params,
                   "cache_hash": exact if deterministic else None},
            result={"model": model, "provider": provider, "max_tokens": 1024,
                    "reserved_nano": sheet.max_cost_nano(input_tokens + 64, 1024),
                    "reservation_id": f"res_syn{self.spec.seed}_{self.seq:08d}", "params": {}},
            key_id="key_synthetic", status_code=200,
        ))
        self.events.append(CostEvent(
            id=f"evt_syn{self.spec.seed}_{self.seq:08d}", ts=ts + timedelta(milliseconds=800), context=ctx,
            provider=provider, model=model, cost_nano=cost, endpoint=endpoint, usage=usage,
            unit_prices={k: str(v) for k, v in sheet.rates(input_tokens).items()},
            decision_id=decision_id, latency_ms=800, request_hash=exact, requested_model=model,
        ))
        return cost


def _context(team: str, agent: str, rng: random.Random) -> Context:
    return Context(org="acme", team=team, project=f"{team}-prod", owner=f"{team}-lead", tier="production",
                   agent=agent, run=f"run-{agent}-{rng.randrange(10**6):06d}")


def _control(b: _Builder) -> None:
    rng, n = b.rng, b.spec.control_calls
    for _ in range(n):  # one model only
        b.call(b.when(), _context("support", "support-bot", rng), "gpt-4o-mini",
               rng.randint(300, 3000), rng.randint(50, 800))
    for _ in range(n):  # large model for long prompts only, small model for the short ones
        ts, ctx = b.when(), _context("ml", "research-agent", rng)
        if rng.random() < 0.5:
            b.call(ts, ctx, "gpt-4o", rng.randint(6000, 20000), rng.randint(500, 2000))
        else:
            b.call(ts, ctx, "gpt-4o-mini", rng.randint(200, 900), rng.randint(40, 300))
    for _ in range(n // 2):  # non-deterministic repeats: not cacheable
        b.call(b.when(), _context("data", "summarizer", rng), "claude-3-5-haiku-latest",
               rng.randint(500, 4000), rng.randint(100, 600), prompt=f"digest-{rng.randrange(5)}")
    for i in range(n // 2):  # deterministic, all distinct
        b.call(b.when(), _context("data", "classifier", rng), "gpt-4o-mini",
               rng.randint(100, 500), rng.randint(1, 10), prompt=f"classify-{i}", temperature=0)


def _oversizing(b: _Builder) -> int:
    rng, saving = b.rng, 0
    for _ in range(b.spec.control_calls // 2):
        b.call(b.when(), _context("support", "triage-bot", rng), "gpt-4o-mini",
               rng.randint(200, 900), rng.randint(40, 300))
    for _ in range(b.spec.oversized_calls):
        ts, inp, out = b.when(), rng.randint(200, 900), rng.randint(40, 300)
        cost = b.call(ts, _context("support", "triage-bot", rng), "gpt-4o", inp, out)
        small = b.catalog.resolve("gpt-4o-mini", "openai", ts).cost_nano(TokenUsage(inp, out))
        saving += cost - small
    for _ in range(b.spec.oversized_calls // 3):  # long prompts stay on gpt-4o: not part of the pattern
        b.call(b.when(), _context("support", "triage-bot", rng), "gpt-4o",
               rng.randint(5000, 12000), rng.randint(300, 900))
    return saving


def _cache(b: _Builder) -> int:
    rng, saving = b.rng, 0
    for question in range(b.spec.faq_questions):
        start = b.when()
        inp, out = rng.randint(800, 2500), rng.randint(150, 500)
        for repeat in range(rng.randint(3, 8)):
            ts = start + timedelta(seconds=rng.randint(0, 1200) if repeat else 0)
            ts = max(ts, start + timedelta(seconds=repeat))  # the first ask comes first
            cost = b.call(ts, _context("support", "faq-bot", rng), "gpt-4o", inp, out,
                          prompt=f"faq-{question}", temperature=0)
            if repeat:
                saving += cost
    return saving


def _inflation(b: _Builder) -> int:
    rng, saving, span = b.rng, 0, b.spec.days * 86400
    for _ in range(b.spec.inflation_calls):
        ts = b.when()
        extra = round(b.spec.inflation_growth * (ts - b.spec.start).total_seconds() / span)
        inp, out = rng.randint(1300, 1700) + extra, rng.randint(200, 400)
        cost = b.call(ts, _context("support", "kb-assistant", rng), "gpt-4o", inp, out)
        saving += cost - b.catalog.resolve("gpt-4o", "openai", ts).cost_nano(TokenUsage(inp - extra, out))
    return saving


def _amplification(b: _Builder) -> int:
    rng, saving, span = b.rng, 0, b.spec.days * 86400
    for _ in range(b.spec.amplification_runs):
        start = b.when()
        calls = 3 + round(b.spec.amplification_growth * (start - b.spec.start).total_seconds() / span)
        ctx = _context("claims", "claims-agent", rng)
        for step in range(calls):
            cost = b.call(start + timedelta(seconds=30 * step), ctx, "gpt-4o",
                          rng.randint(1000, 3000), rng.randint(100, 400))
            saving += cost if step >= 3 else 0
    return saving


def _chatter(b: _Builder) -> int:
    rng, saving = b.rng, 0
    for _ in range(b.spec.chatter_runs):
        start, ctx = b.when(), _context("ml", "crawler", rng)
        steps = rng.randint(3, 5)
        repeats = rng.randint(4, 12) if rng.random() < 0.5 else 0
        inp, out = rng.randint(800, 2000), rng.randint(100, 300)
        for step in range(steps + repeats):
            prompt = f"{ctx.run}-step-{min(step, steps - 1)}"
            if step < steps - 1:
                inp, out = rng.randint(800, 2000), rng.randint(100, 300)
            cost = b.call(start + timedelta(seconds=20 * step), ctx, "gpt-4o", inp, out, prompt=prompt)
            saving += cost if step >= steps else 0
    return saving


def _leakage(b: _Builder) -> int:
    rng, saving = b.rng, 0
    for _ in range(b.spec.leaked_calls):
        ts, inp, out = b.when(), rng.randint(500, 4000), rng.randint(100, 800)
        ctx = Context(org="acme", team="ml", project="ml-research", owner="ml-lead", tier="experiment",
                      pipeline="eval", experiment=f"exp-{rng.randrange(12):02d}",
                      run=f"run-eval-{rng.randrange(10**6):06d}")
        cost = b.call(ts, ctx, "claude-3-5-sonnet-latest", inp, out)
        small = b.catalog.resolve("claude-3-5-haiku-latest", "anthropic", ts).cost_nano(TokenUsage(inp, out))
        saving += cost - small
    return saving


def _embed(b: _Builder, ts: datetime, ctx: Context, model: str, tokens: int, content: str) -> int:
    """Record one admitted embeddings call; returns its cost."""
    b.seq += 1
    exact = hashlib.sha256(f"{model}|embed|{content}".encode()).hexdigest()
    usage = TokenUsage(input_tokens=tokens, output_tokens=0)
    sheet = b.catalog.resolve(model, "openai", ts)
    cost = sheet.cost_nano(usage)
    decision_id = f"dec_syn{b.spec.seed}_{b.seq:08d}"
    b.decisions.append(DecisionRecord(
        id=decision_id, ts=ts, hook="llm.request", effect="allow", bundle_revision=REVISION, context=ctx,
        input={"endpoint": "embeddings", "model": model, "input_tokens_bound": tokens + 64,
               "input_tokens_estimate": tokens, "max_tokens": 0, "stream": False, "request_hash": exact,
               "protocol": "openai", "params": {}, "cache_hash": exact},
        result={"model": model, "provider": "openai", "max_tokens": 0, "reserved_nano": sheet.max_cost_nano(
            tokens + 64, 0), "reservation_id": f"res_syn{b.spec.seed}_{b.seq:08d}", "params": {}},
        key_id="key_synthetic", status_code=200,
    ))
    b.events.append(CostEvent(
        id=f"evt_syn{b.spec.seed}_{b.seq:08d}", ts=ts + timedelta(milliseconds=200), context=ctx, provider="openai",
        model=model, cost_nano=cost, endpoint="embeddings", usage=usage,
        unit_prices={k: str(v) for k, v in sheet.rates(tokens).items()}, decision_id=decision_id, latency_ms=200,
        request_hash=exact, requested_model=model,
    ))
    return cost


def _embeddings(b: _Builder) -> int:
    rng, saving, model = b.rng, 0, "text-embedding-3-large"
    for i in range(b.spec.embedded_documents * 3 // 2):  # control: distinct queries
        _embed(b, b.when(), _context("search", "search-api", rng), model, rng.randint(20, 200), f"query-{i}")
    ctx = Context(org="acme", team="search", project="search-prod", owner="search-lead", tier="production",
                  pipeline="reindex")
    for doc in range(b.spec.embedded_documents):
        tokens = rng.randint(4000, 16000)
        nights = sorted(rng.sample(range(b.spec.days - 1), rng.randint(2, 6)))
        for n, night in enumerate(nights):
            ts = b.spec.start + timedelta(days=night, hours=2, seconds=doc * 5)
            cost = _embed(b, ts, replace(ctx, run=f"run-reindex-{night:02d}"), model, tokens, f"doc-{doc}")
            saving += cost if n else 0
    return saving


def _environment(b: _Builder, skus: SkuCatalog, blueprint: str, sku: str, count: int, start: datetime,
                 hours: Decimal, metrics: dict[str, tuple[float, datetime]]) -> EnvironmentRecord:
    b.seq += 1
    price = skus.lookup(sku, start)
    hourly = price.hourly_nano(count)
    end = start + timedelta(seconds=int(hours * 3600))
    ctx = Context(org="acme", team="ml", project="ml-research", owner="ml-lead", tier="production")
    return EnvironmentRecord(
        id=f"env_syn{b.spec.seed}_{b.seq:08d}", blueprint=blueprint, state=EnvState.TORN_DOWN, context=ctx,
        inputs={}, resources=({"kind": "gpu", "sku": price.sku, "count": count, "hourly_nano": hourly,
                               "hourly_usd": str(price.hourly_usd * count), "gpu_type": price.gpu_type,
                               "gpus_each": price.gpu_count, "source": price.source},),
        driver={"type": "noop"}, handle={},
        lifecycle={"ttl": 86400, "max_ttl": 86400, "extend_by": 3600, "max_extensions": 0, "notice": 600,
                   "accrue_every": 60, "idle": None, "grace": 10},
        hourly_nano=hourly, projected_nano=hourly * 24, decision_id=f"dec_syn{b.spec.seed}_{b.seq:08d}",
        bundle_revision=REVISION, created_at=start, expires_at=start + timedelta(days=1),
        max_expires_at=start + timedelta(days=1), next_action_at=end,
        accrued_nano=price.cost_nano(int(hours * 3600), count), accrued_until=end, started_at=start,
        metrics={k: {"value": v, "at": at.isoformat(), "source": "api"} for k, (v, at) in metrics.items()},
        ended_at=end, end_reason="ttl",
    )


def _gpus(b: _Builder, skus: SkuCatalog) -> tuple[int, int, list[EnvironmentRecord]]:
    rng, idle_saving, oversized_saving, envs = b.rng, 0, 0, []
    last = (b.spec.days - 1) * 86400  # every run (≤ 12 h) ends inside the window

    def when() -> datetime:
        return b.spec.start + timedelta(seconds=rng.randrange(last))

    big, small = "aws/gpu/A100-80GB", "aws/gpu/L4"
    for _ in range(b.spec.gpu_environments):  # notebooks left running idle
        start, hours = when(), Decimal(rng.randint(8, 24)) / 2
        idle = rng.randint(4, int(hours * 2)) * 1800  # the last 2 h to all of the run
        end = start + timedelta(seconds=int(hours * 3600))
        env = _environment(b, skus, "notebook-a100", big, 1, start, hours,
                           {"gpu_util": (rng.randint(0, 40) / 10, end - timedelta(seconds=idle))})
        idle_saving += (env.hourly_nano * idle * 2 + 3600) // 7200
        envs.append(env)
    for _ in range(b.spec.gpu_environments):  # fine-tunes that fit a 24 GB GPU
        start, hours = when(), Decimal(rng.randint(4, 20)) / 2
        end = start + timedelta(seconds=int(hours * 3600))
        env = _environment(b, skus, "finetune-a100", big, 2, start, hours,
                           {"gpu_util": (rng.randint(60, 95), end), "gpu_memory_gb": (rng.randint(80, 140) / 10, end)})
        seconds = int(hours * 3600)
        oversized_saving += skus.lookup(big, start).cost_nano(seconds, 2) - skus.lookup(small, start).cost_nano(
            seconds, 2)
        envs.append(env)
    for _ in range(b.spec.gpu_environments):  # control: busy, memory needs the large GPU
        start, hours = when(), Decimal(rng.randint(4, 20)) / 2
        end = start + timedelta(seconds=int(hours * 3600))
        envs.append(_environment(b, skus, "train-h100", "aws/gpu/H100", 4, start, hours,
                                 {"gpu_util": (rng.randint(70, 99), end),
                                  "gpu_memory_gb": (rng.randint(600, 750) / 10, end)}))
    return idle_saving, oversized_saving, envs


def _outcomes(b: _Builder) -> int:
    """Agent `underwriter`: 4 calls per run all window long, but the share of runs that end in an
    `application_decided` outcome falls as 1 / (1 + x) over the window (x = 0..1: retries that decide
    nothing), so calls per outcome rise linearly from 4 to 8. Agent `quoter` (90 % of runs end in
    `quote_sent`) is the control."""
    rng, saving, span = b.rng, 0, b.spec.days * 86400
    for agent, outcome, calls, model in (("underwriter", "application_decided", 4, "gpt-4o"),
                                         ("quoter", "quote_sent", 3, "gpt-4o-mini")):
        for _ in range(b.spec.outcome_runs):
            start = b.when()
            x = (start - b.spec.start).total_seconds() / span
            decided = rng.random() < (1 / (1 + x) if agent == "underwriter" else 0.9)
            ctx = _context("risk", agent, rng)
            cost = sum(b.call(start + timedelta(seconds=20 * step), ctx, model, rng.randint(1000, 3000),
                              rng.randint(100, 400)) for step in range(calls))
            if decided:
                b.outcomes.append(OutcomeRecord(f"out_syn{b.spec.seed}_{b.seq:08d}",
                                                start + timedelta(seconds=20 * calls), outcome, Decimal(1), ctx))
            elif agent == "underwriter":
                saving += cost  # at the start every run decided: a run without an outcome is the excess
    return saving


_AGENT_PATTERNS = (("inflation", "prompt_inflation", _inflation),
                   ("amplification", "inference_amplification", _amplification),
                   ("chatter", "agent_chatter", _chatter), ("leakage", "tier_leakage", _leakage))


def generate(spec: SyntheticSpec, catalog: Catalog, skus: SkuCatalog | None = None) -> SyntheticHistory:
    builder = _Builder(spec, catalog)
    _control(builder)
    known: dict[str, int] = {}
    if spec.oversizing:
        known["model_oversizing"] = _oversizing(builder)
    if spec.cache:
        known["cache_opportunity"] = _cache(builder)
    for flag, pattern, plant in _AGENT_PATTERNS:
        if getattr(spec, flag):
            builder.rng = random.Random(f"{spec.seed}:{pattern}")  # its own stream: no other figure moves
            known[pattern] = plant(builder)
    environments: list[EnvironmentRecord] = []
    if spec.embeddings:
        builder.rng = random.Random(f"{spec.seed}:duplicate_embeddings")
        known["duplicate_embeddings"] = _embeddings(builder)
    if spec.outcome_amplification:
        builder.rng = random.Random(f"{spec.seed}:inference_amplification_per_outcome")
        known["inference_amplification_per_outcome"] = _outcomes(builder)
    if spec.gpus:
        builder.rng = random.Random(f"{spec.seed}:gpu_environments")
        known["idle_gpu_environments"], known["oversized_gpu_environments"], environments = _gpus(
            builder, skus or SkuCatalog.load())
    order = sorted(range(len(builder.decisions)), key=lambda i: (builder.decisions[i].ts, builder.decisions[i].id))
    return SyntheticHistory(
        start=spec.start, end=spec.start + timedelta(days=spec.days),
        decisions=tuple(builder.decisions[i] for i in order), events=tuple(builder.events[i] for i in order),
        known=known, environments=tuple(environments),
        outcomes=tuple(sorted(builder.outcomes, key=lambda o: (o.ts, o.id))),
    )


class HistorySink(DecisionLog, RunLedger, Environments, Protocol):
    """What writing a synthetic history into a store needs."""


def write(store: HistorySink, history: SyntheticHistory, batch: int = 5000) -> None:
    for decision in history.decisions:
        store.record_decision(decision)
    for i in range(0, len(history.events), batch):
        store.record_nodes((), history.events[i:i + batch])
    for env in history.environments:
        store.create_environment(env)
    for outcome in history.outcomes:
        store.record_outcome(outcome)
