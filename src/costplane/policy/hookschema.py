"""What each hook's `request` holds: one declarative table per hook.

Every hook declares its request schema: the fields its enforcement point passes to the policy
engine, with their CEL type, a description and an example. The table is the single source of

* the values the CEL `request` variable gets for fields the caller left unset (`request_defaults`);
* the bundle's static checks: a `when` or budget `scope` that reads a field no schema declares is
  a load-time error with a did-you-mean (`unknown_fields`);
* the validation of a `PolicyTest`'s `request` (`check_value`);
* the tables in docs/policy.md and `costplane policy hooks` (`render_markdown`, `render_text`).

A field with a default is always present in `request` (the default stands in for "unset"); an
*optional* field (default None) is present only when the caller has a value, so policies guard it
with `has(request.temperature)`.

Budget scopes are evaluated at every hook that counts money (`BUDGET_HOOKS`): a field is valid in a
scope if one of those hooks declares it, and at a hook that does not declare it the field reads as
its default (so `request.model == "gpt-4o"` is simply false at `environment.launch`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "BUDGET_HOOKS",
    "DECISION_INPUT_VERSION",
    "HOOK_SCHEMAS",
    "SCHEMAS",
    "Field",
    "HookSchema",
    "budget_fields",
    "check_value",
    "docs_with_tables",
    "render_markdown",
    "render_text",
    "request_defaults",
    "unknown_fields",
]

#: Version of the decisions log's `input` record: the hook's `request` facts exactly as evaluated
#: (field names and types as declared below). Bumped when a field changes meaning or type.
DECISION_INPUT_VERSION = 1

_ZERO: dict[str, Any] = {"string": "", "int": 0, "double": 0.0, "bool": False}


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a hook's `request`."""

    name: str
    cel_type: str  # string | int | double | bool | list(string) | map(string, string)
    description: str
    example: Any
    optional: bool = False  # True: present only when the caller has a value (guard with has())

    @property
    def default(self) -> Any:
        """The value an unset field reads as; None for an optional field (absent)."""
        if self.optional:
            return None
        if self.cel_type.startswith("list"):
            return []
        if self.cel_type.startswith("map"):
            return {}
        return _ZERO[self.cel_type]


@dataclass(frozen=True, slots=True)
class HookSchema:
    hook: str
    decides: str  # what is decided at this hook
    passed_by: str  # the enforcement point that passes the facts
    fields: tuple[Field, ...]
    effects: tuple[str, ...]
    #: also valid at this hook: names the bundle's blueprints declare as idle metrics
    blueprint_metrics: bool = False

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _f(name: str, cel_type: str, description: str, example: Any, *, optional: bool = False) -> Field:
    return Field(name, cel_type, description, example, optional)


_STR, _INT, _DBL, _BOOL = "string", "int", "double", "bool"
_LIST, _MAP = "list(string)", "map(string, string)"

_LLM = HookSchema(
    "llm.request", "an LLM call, before it is sent", "the gateway and the SDK's direct mode (decision core)",
    (
        _f("model", _STR, "the model as the client asked for it (before any route; for Azure OpenAI the "
           "deployment name)", "gpt-4o"),
        _f("provider", _STR, "the pricing provider of the configured provider serving the model; \"\" when none",
          "openai"),
        _f("endpoint", _STR, "the operation: chat.completions, embeddings, responses, responses.compact (OpenAI, "
           "Azure OpenAI, Gemini), messages (Anthropic), generate_content (Gemini), converse or invoke (Bedrock)",
           "chat.completions"),
        _f("input_tokens", _INT, "the gateway's typical estimate of the prompt's tokens", 1200),
        _f("input_tokens_bound", _INT, "a provable upper bound of the prompt's tokens", 1500),
        _f("max_tokens", _INT, "the output cap the client set; 0 = none", 1024),
        _f("stream", _BOOL, "the client asked for a streamed response", False),
        _f("temperature", _DBL, "sampling temperature, when the client sent one", 0.7, optional=True),
        _f("top_p", _DBL, "nucleus sampling, when the client sent it", 0.9, optional=True),
        _f("n", _INT, "number of choices, when the client sent it", 1, optional=True),
        _f("user", _STR, "the end-user id the client sent (OpenAI `user`)", "u-42", optional=True),
        _f("service_tier", _STR, "the tier asked for (flex, priority, scale, auto); batch is `processing`",
          "priority", optional=True),
        _f("processing", _STR, "batch, when the client asked for the batch tier", "batch", optional=True),
        _f("speed", _STR, "a non-standard speed the client asked for", "fast", optional=True),
        _f("billed_units", _LIST, "fee-bearing units the request's built-in tools may incur", ["web_searches"],
          optional=True),
    ),
    ("allow", "deny", "route", "mutate", "notify"),
)
_LAUNCH = HookSchema(
    "environment.launch", "a governed environment, before it starts", "environments (launch and approval)",
    (
        _f("blueprint", _STR, "the blueprint's name", "gpu-notebook"),
        _f("inputs", _MAP, "the launch inputs, as text", {"gpu_type": "L4"}),
        _f("driver", _STR, "the blueprint's driver type", "kubernetes"),
        _f("gpu_type", _STR, "the GPU type of the priced resources; \"\" when none", "A100-80GB"),
        _f("gpu_count", _INT, "GPUs across all resources", 2),
        _f("skus", _LIST, "the SKUs of the priced resources", ["gcp/a2-highgpu-1g"]),
        _f("hourly_usd", _DBL, "hourly price in USD (for comparisons; money is exact in hourly_nano)", 3.67),
        _f("hourly_nano", _INT, "hourly price in nano-USD", 3_670_000_000),
        _f("ttl_seconds", _INT, "the requested time to live", 14400),
        _f("ttl_hours", _DBL, "ttl_seconds / 3600", 4.0),
        _f("projected_usd", _DBL, "hourly price x TTL in USD", 14.68),
        _f("projected_nano", _INT, "hourly price x TTL in nano-USD", 14_680_000_000),
        _f("max_ttl_seconds", _INT, "the blueprint's lifecycle.max_ttl", 86400),
    ),
    ("allow", "deny", "require_approval", "mutate", "notify"),
)
_EXTEND = HookSchema(
    "environment.extend", "a running environment's TTL extension", "environments (extend)",
    (
        _f("blueprint", _STR, "the blueprint's name", "gpu-notebook"),
        _f("environment_id", _STR, "the environment's id", "env_01J…"),
        _f("extend_seconds", _INT, "the extension asked for", 3600),
        _f("extensions", _INT, "how often it was extended before", 1),
        _f("hourly_usd", _DBL, "hourly price in USD", 3.67),
        _f("accrued_usd", _DBL, "cost accrued so far in USD", 7.34),
        _f("ttl_seconds", _INT, "the whole time to live if extended", 18000),
    ),
    ("allow", "deny", "require_approval", "mutate", "notify"),
)
_RUNTIME = HookSchema(
    "environment.runtime", "a running environment, on every scheduler pass",
    "the environment scheduler (`EnvironmentCore.runtime`)",
    (
        _f("blueprint", _STR, "the blueprint's name", "gpu-notebook"),
        _f("environment_id", _STR, "the environment's id", "env_01J…"),
        _f("accrued_usd", _DBL, "cost accrued so far in USD", 7.34),
        _f("projected_usd", _DBL, "cost projected to the end of its TTL in USD", 14.68),
        _f("hourly_usd", _DBL, "hourly price in USD", 3.67),
        _f("time_left_seconds", _INT, "seconds until it expires", 5400),
        _f("budget_remaining_usd", _DBL, "the least money left in its hard budgets; -1.0 when none", 12.5),
        _f("idle_seconds", _INT, "seconds it has been idle by its idle rule; 0 when not idle", 1800),
        _f("gpu_util", _DBL, "GPU utilisation in percent, when measured or reported", 3.5, optional=True),
        _f("cpu_util", _DBL, "CPU utilisation in percent, when measured or reported", 12.0, optional=True),
    ),
    ("allow", "suspend", "teardown", "notify"),
    blueprint_metrics=True,
)
_IAC = HookSchema(
    "iac.plan", "one compute resource of a terraform plan (a dry run against the budgets)",
    "`costplane iac check` and the IaC API",
    (
        _f("address", _STR, "the resource address", "aws_instance.trainer"),
        _f("resource_type", _STR, "the terraform resource type", "aws_instance"),
        _f("provider", _STR, "the cloud: aws, gcp or azure", "aws"),
        _f("action", _STR, "create, update or replace", "create"),
        _f("instance_type", _STR, "the machine type", "p4d.24xlarge"),
        _f("sku", _STR, "the first priced SKU; \"\" when none", "aws/p4d.24xlarge"),
        _f("region", _STR, "the region priced", "us-east-1"),
        _f("gpu_type", _STR, "the GPU type; \"\" when none", "A100-40GB"),
        _f("gpu_count", _INT, "GPUs across the desired nodes", 8),
        _f("node_count", _INT, "desired nodes", 1),
        _f("min_nodes", _INT, "autoscaling minimum", 1),
        _f("max_nodes", _INT, "autoscaling maximum", 1),
        _f("hourly_usd", _DBL, "hourly price of the desired nodes in USD", 32.77),
        _f("monthly_usd", _DBL, "hourly x 730 in USD", 23922.1),
        _f("max_monthly_usd", _DBL, "monthly at max_nodes in USD", 23922.1),
        _f("estimated", _BOOL, "the price is an estimate (no exact SKU)", False),
        _f("spot", _BOOL, "spot or preemptible capacity", False),
        _f("tags", _MAP, "the resource's tags or labels", {"cost_center": "ml"}),
        _f("plan_monthly_usd", _DBL, "the whole plan's priced monthly total in USD", 24500.0),
    ),
    ("allow", "deny", "notify"),
)
_SLO = HookSchema(
    "slo.breach", "an economic SLO that is breached", "the SLO monitor",
    (
        _f("slo", _STR, "the SLO's name", "support-cost-per-ticket"),
        _f("outcome", _STR, "the outcome it counts", "ticket_resolved"),
        _f("model", _STR, "the model of the SLO's scope; \"\" when none", "gpt-4o"),
        _f("cost_nano", _INT, "cost over the SLO window in nano-USD", 12_000_000_000),
        _f("outcomes", _INT, "outcomes over the window", 40),
        _f("cost_per_outcome_nano", _INT, "cost per outcome (the whole cost when no outcome)", 300_000_000),
        _f("objective_nano", _INT, "the objective per outcome in nano-USD", 250_000_000),
    ),
    ("route", "throttle", "notify"),
)
_SPEND = HookSchema(
    "spend.record", "spend observed after the fact (it is recorded whatever policies say)",
    "the decision core's spend recording (gateway settlement, SDK, ingest, OTLP, environments)",
    (
        _f("kind", _STR, "llm, environment, gpu_job, tool or resource", "llm"),
        _f("source", _STR, "gateway, sdk, ingest, otlp or environment", "otlp"),
        _f("model", _STR, "the model called; \"\" when not an LLM call", "gpt-4o-mini"),
        _f("provider", _STR, "the pricing provider; \"\" when none", "openai"),
        _f("endpoint", _STR, "the endpoint or operation; \"\" when none", "chat.completions"),
        _f("cost_nano", _INT, "the cost in nano-USD", 1_250_000),
        _f("cost_usd", _DBL, "the cost in USD (for comparisons; money is exact in cost_nano)", 0.00125),
        _f("input_tokens", _INT, "input tokens; 0 when none", 1200),
        _f("output_tokens", _INT, "output tokens; 0 when none", 300),
        _f("environment_id", _STR, "the environment that accrued it; \"\" when none", ""),
        _f("sku", _STR, "the SKU priced (environments, GPU jobs, resources); \"\" when none", ""),
    ),
    ("allow", "notify"),
)

#: Every hook, in the order of HOOKS.
HOOK_SCHEMAS: tuple[HookSchema, ...] = (_LLM, _LAUNCH, _EXTEND, _RUNTIME, _IAC, _SLO, _SPEND)
SCHEMAS: Mapping[str, HookSchema] = MappingProxyType({s.hook: s for s in HOOK_SCHEMAS})
#: Hooks whose decisions count money against budgets: budget scopes are evaluated there.
#: (`environment.extend` grows the reservation its launch made under the launch's scopes.)
BUDGET_HOOKS: tuple[str, ...] = ("llm.request", "environment.launch", "iac.plan", "spend.record")


def budget_fields() -> dict[str, Field]:
    """Fields valid in a budget scope: those of every budget hook (the first declaration wins)."""
    out: dict[str, Field] = {}
    for hook in BUDGET_HOOKS:
        for item in SCHEMAS[hook].fields:
            out.setdefault(item.name, item)
    return out


def request_defaults(hook: str, scope_fields: Iterable[str] = ()) -> dict[str, Any]:
    """What the `request` variable holds at `hook` for fields the caller left unset: the hook's
    defaults, plus, for the `scope_fields` the bundle's budget scopes read that the hook does not
    declare, their budget-hook default (a scope reads them as unset). Optional fields have none."""
    schema = SCHEMAS.get(hook)
    own = schema.fields if schema is not None else ()
    out = {f.name: f.default for f in own if not f.optional}
    declared = {f.name for f in own}
    shared = budget_fields()
    for name in scope_fields:
        item = shared.get(name)
        if item is not None and name not in declared and not item.optional:
            out[name] = item.default
    return out


def unknown_fields(hook: str | None, names: Iterable[str], metrics: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(field, problem) for each `request.<field>` that `hook` does not declare (hook None: a budget
    scope, checked against every budget hook). `metrics`: idle metric names of the bundle's blueprints."""
    if hook is None:
        valid = tuple(budget_fields())
        where = f"any hook that evaluates budgets ({', '.join(BUDGET_HOOKS)})"
        listing = ""
    else:
        schema = SCHEMAS[hook]
        valid = schema.names + (tuple(sorted(set(metrics))) if schema.blueprint_metrics else ())
        where = f"hook {hook!r}"
        listing = f"request has {', '.join(valid)}; "
    problems: list[tuple[str, str]] = []
    for name in sorted(set(names)):
        if name in valid:
            continue
        hint = _did_you_mean(name, valid)
        problems.append((name, f"unknown request field request.{name} at {where}{hint} "
                               f"({listing}see `costplane policy hooks`)"))
    return problems


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean request.{close[0]}?" if close else ""


def check_value(item: Field, value: Any) -> str | None:
    """None if `value` (plain YAML/JSON) fits the field's CEL type, else what was expected."""
    kind = item.cel_type
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "double":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind.startswith("list"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    return None if ok else f"expected {_WHAT[kind]}"


_WHAT = {"string": "a string", "int": "an integer", "double": "a number", "bool": "true or false",
         _LIST: "a list of strings", _MAP: "a mapping of string to string"}


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _default_text(item: Field) -> str:
    return "only when set" if item.optional else _shown(item.default)


def render_markdown() -> str:
    """The per-hook tables of docs/policy.md (between its hook-schema markers)."""
    lines: list[str] = []
    for schema in HOOK_SCHEMAS:
        budgets = "yes" if schema.hook in BUDGET_HOOKS else "no"
        lines += [f"#### `{schema.hook}`", "",
                  f"Decides {schema.decides}; passed by {schema.passed_by}. Effects: "
                  f"{', '.join(schema.effects)}. Budget scopes evaluated: {budgets}.", ""]
        if schema.blueprint_metrics:
            lines += ["Also valid: every metric name a blueprint of the bundle names in `lifecycle.idle.metric` "
                      "(a double, only when reported).", ""]
        lines += ["| field | CEL type | default | description | example |", "|---|---|---|---|---|"]
        for item in schema.fields:
            default = _default_text(item) if item.optional else f"`{_default_text(item)}`"
            lines.append(f"| `{item.name}` | `{item.cel_type}` | {default} | {item.description} | "
                         f"`{_shown(item.example)}` |")
        lines.append("")
    return "\n".join(lines)


def render_text(hook: str | None = None) -> str:
    """The same tables as plain text (`costplane policy hooks`)."""
    out: list[str] = []
    for schema in HOOK_SCHEMAS:
        if hook is not None and schema.hook != hook:
            continue
        out.append(f"{schema.hook}: {schema.decides}")
        out.append(f"  effects: {', '.join(schema.effects)}; budgets: "
                   f"{'evaluated' if schema.hook in BUDGET_HOOKS else 'not evaluated'}")
        width = max(len(f.name) for f in schema.fields)
        kinds = max(len(f.cel_type) for f in schema.fields)
        for item in schema.fields:
            out.append(f"  {item.name:<{width}}  {item.cel_type:<{kinds}}  {item.description}"
                       f" [default: {_default_text(item)}]")
        if schema.blueprint_metrics:
            out.append("  (also: every blueprint lifecycle.idle.metric name, a double, only when reported)")
        out.append("")
    return "\n".join(out)


DOCS_BEGIN = "<!-- hook-schema:begin -->"
DOCS_END = "<!-- hook-schema:end -->"


def docs_with_tables(page: str) -> str:
    """`page` (docs/policy.md) with the text between its hook-schema markers regenerated."""
    start, end = page.find(DOCS_BEGIN), page.find(DOCS_END)
    if start < 0 or end < start:
        raise ValueError(f"the page has no {DOCS_BEGIN} … {DOCS_END} block")
    return page[: start + len(DOCS_BEGIN)] + "\n" + render_markdown() + page[end:]
