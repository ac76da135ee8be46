"""Cost events of every kind the FOCUS export meets, recorded in a store the way costplane records them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from costplane.attribution.context import Context
from costplane.core.bundle_state import ActiveBundle
from costplane.core.environments import EnvironmentCore
from costplane.ledger.envtypes import EnvironmentRecord
from costplane.ledger.store import Store
from costplane.ledger.types import CostEvent
from costplane.lifecycle.drivers import DriverSet
from costplane.policy.bundle import load_bundle
from costplane.policy.engine import PolicyEngine
from costplane.pricing.skus import SkuCatalog
from costplane.pricing.types import PriceSheet, TokenUsage, Variant

BASE = datetime(2026, 11, 3, 9, 30, 0, 250_000, tzinfo=UTC)
BLUEPRINT = """
kind: Blueprint
name: train-box
resources: [{kind: gpu, sku: aws/gpu/L4, count: 2}, {kind: instance, sku: aws/gpu/A10G, count: 1}]
driver: {type: noop}
lifecycle: {ttl: 4h, max_ttl: 8h, accrue_every: 60s}
"""

MINI = PriceSheet(model="gpt-4o-mini", provider="openai", input=Decimal("0.15"), output=Decimal("0.6"),
                  cache_read=Decimal("0.075"))
SONNET = PriceSheet(model="claude-sonnet-4-5", provider="anthropic", input=Decimal("3"), output=Decimal("15"),
                    cache_read=Decimal("0.3"), cache_write=Decimal("3.75"),
                    tiers=((200_000, {"input": Decimal("6"), "output": Decimal("22.5")}),))
#: 1-hour cache writes at 2x input and web searches at $10 per thousand
SONNET_TOOLS = PriceSheet(model="claude-sonnet-4-5", provider="anthropic", input=Decimal("3"), output=Decimal("15"),
                          cache_read=Decimal("0.3"), cache_write=Decimal("3.75"),
                          units=(("cache_write_1h", Decimal("6")), ("web_searches", Decimal("10"))))
#: the priority service tier's prices
MINI_TIERS = PriceSheet(model="gpt-4o-mini", provider="openai", input=Decimal("0.15"), output=Decimal("0.6"),
                        variants=(Variant(when=(("service_tier", "priority"),), sheet=PriceSheet(
                            model="gpt-4o-mini", provider="openai", input=Decimal("0.25"), output=Decimal("1"))),))


def _llm(event_id: str, hours: int, provider: str, sheet: PriceSheet, usage: TokenUsage, **extra: object) -> CostEvent:
    rates = sheet.for_conditions(usage.conditions).rates(usage.input_tokens)
    fields: dict[str, object] = {
        "id": event_id, "ts": BASE + timedelta(hours=hours), "provider": provider, "model": sheet.model,
        "context": Context(org="acme", team="support", agent="triage", run=f"r-{hours}", tags={"env": "prod"}),
        "cost_nano": sheet.cost_nano(usage), "endpoint": "chat.completions", "usage": usage,
        "unit_prices": {k: str(v) for k, v in rates.items()}, "latency_ms": 1500, "decision_id": f"dec_{hours}",
    }
    fields.update(extra)
    return CostEvent(**fields)  # type: ignore[arg-type]


def llm_events() -> list[CostEvent]:
    """Model calls: gateway (a costplane.yaml key), OTLP ids, Bedrock, tiers, flagged, unpriced, cached, tools."""
    return [
        _llm("evt_mini", 0, "openai-main", MINI, TokenUsage(input_tokens=1000, output_tokens=300,
                                                             cache_read_tokens=200, reasoning_tokens=100),
             saved_nano=7),
        _llm("evt_sonnet", 1, "anthropic", SONNET, TokenUsage(input_tokens=12_345, output_tokens=678,
                                                               cache_read_tokens=5_000, cache_write_tokens=1_111)),
        _llm("evt_sonnet_tier", 2, "anthropic", SONNET, TokenUsage(input_tokens=250_001, output_tokens=1_001)),
        _llm("evt_sonnet_1h", 2, "anthropic", SONNET_TOOLS, TokenUsage(
            input_tokens=5_000, output_tokens=400, cache_write_tokens=3_000,
            units=(("cache_write_1h", 1_000), ("web_searches", 2)))),
        _llm("evt_priority", 2, "openai-main", MINI_TIERS, TokenUsage(
            input_tokens=4_321, output_tokens=123, conditions=(("service_tier", "priority"),))),
        _llm("evt_bedrock", 3, "aws", PriceSheet(model="anthropic.claude-3-5-sonnet-20241022-v2:0", provider="aws",
                                                 input=Decimal("3"), output=Decimal("15")),
             TokenUsage(input_tokens=77, output_tokens=9)),
        _llm("evt_flagged", 4, "local", PriceSheet(model="my-finetune", provider="local", input=Decimal("1"),
                                                   output=Decimal("2"), flagged_default=True),
             TokenUsage(input_tokens=10, output_tokens=10), price_flagged=True),
        # a span with a model and no usage: no unit price, recorded unpriced at 0
        CostEvent(id="evt_unpriced", ts=BASE + timedelta(hours=5), context=Context(team="growth"),
                  provider="openai", model="gpt-4.1", cost_nano=0, status="unpriced", endpoint="chat"),
        # an estimated span: a cost without per-unit prices
        CostEvent(id="evt_estimated", ts=BASE + timedelta(hours=5, minutes=1), context=Context(team="growth"),
                  provider="openai", model="gpt-4.1", cost_nano=123_457, status="estimated",
                  usage=TokenUsage(input_tokens=50, output_tokens=5)),
        # a priced unit this exporter does not itemise (audio tokens): one line at the event's cost
        CostEvent(id="evt_audio", ts=BASE + timedelta(hours=5, minutes=2), context=Context(team="growth"),
                  provider="openai", model="gpt-4o-audio-preview", cost_nano=4_000_001,
                  usage=TokenUsage(input_tokens=100, output_tokens=10),
                  unit_prices={"input": "2.5", "output": "10", "input_audio": "40"}),
        CostEvent(id="evt_cached", ts=BASE + timedelta(hours=6), context=Context(team="support"),
                  provider="openai-main", model="gpt-4o-mini", cost_nano=0, kind="cache_hit", status="cached",
                  saved_nano=219_000, usage=TokenUsage(input_tokens=1000, output_tokens=300)),
        CostEvent(id="evt_tool", ts=BASE + timedelta(hours=7), context=Context(team="support", run="r-7"),
                  provider="tool", model="web-search", cost_nano=5_000_000, kind="tool", endpoint="tool"),
    ]


def gpu_job_event() -> CostEvent:
    """An SDK GPU job (costplane.gpu_job / resource_cost): hourly SKU price × count × seconds."""
    price = SkuCatalog.load().lookup("aws/gpu/L4")
    seconds, count = Decimal(5_407), 2
    return CostEvent(id="evt_gpu", ts=BASE + timedelta(hours=8), context=Context(team="ml"), provider=price.provider,
                     model=price.sku, cost_nano=price.cost_nano(seconds, count), kind="gpu", endpoint="train",
                     unit_prices={"hourly_usd": str(price.hourly_usd), "count": str(count), "seconds": str(seconds)})


def record_environment(store: Store, tmp: Path) -> EnvironmentRecord:
    """A real environment (noop driver) launched, accrued 90 min 7 s, then torn down 20 min later."""
    now = [BASE + timedelta(hours=10)]
    root = tmp / "bundle"
    root.mkdir(exist_ok=True)
    (root / "all.yaml").write_text(BLUEPRINT)
    bundle = load_bundle(root)
    active = ActiveBundle(bundle.revision, PolicyEngine(bundle), {b.name: b for b in bundle.budgets})
    core = EnvironmentCore(store, SkuCatalog.load(), lambda: active, DriverSet(tmp / "state"), clock=lambda: now[0])
    env = core.launch(Context(team="ml", owner="ana"), "train-box", {})
    assert isinstance(env, EnvironmentRecord), env
    now[0] += timedelta(minutes=90, seconds=7)
    core.accrue(env, now[0])
    now[0] += timedelta(minutes=20)
    done = core.teardown(env.id, "by hand")
    assert isinstance(done, EnvironmentRecord), done
    return done


def record_all(store: Store, tmp: Path) -> tuple[int, EnvironmentRecord]:
    """Every kind of event in `store`; returns the ledger's total cost (nano-USD) and the environment."""
    events = [*llm_events(), gpu_job_event()]
    for event in events:
        store.record_event(event)
    env = record_environment(store, tmp)
    return sum(e.cost_nano for e in events) + env.accrued_nano, env
