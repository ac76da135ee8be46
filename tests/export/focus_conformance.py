"""A FOCUS 1.2 / 1.3 conformance checker for Cost and Usage datasets (CSV or Parquet).

The column requirements are data: `data/focus_columns_v1.2.json` (extracted from the 1.2
specification's column pages), `data/focus_columns_v1.3.json` (from the 1.3 Requirements
Model) and `data/focus_rm_1.3_corrections.json` (applied to 1.3) — see data/SOURCES.md.
From them the checker takes, per column: presence (feature level + applicability), data
type, nullability, allowed values and value format; and it parses the requirement sentences
into conditional rules it can evaluate row by row:

* ``X MUST [NOT] be null when <cond>``   * ``X MUST [NOT] be "V" when <cond>``
* ``X MUST be a non-negative decimal value``
* ``X MUST equal the product of P and Q`` / ``The product of P and Q MUST match the X``
* ServiceSubcategory's parent ServiceCategory (from the grouping of its allowed values)

where <cond> is clauses joined by "and": ``C is [not] null`` or ``C is [not] "V" [or "W"]``.
A sentence it cannot read that way (semantics such as "when the charge is not specific to
an availability zone") is listed in ``Report.unparsed``, never silently passed as checked.

Presence depends on what the data generator supports: 1.3 names the criteria
(COMMITMENT_DISCOUNT_SUPPORTED, …); 1.2 states them in prose, so 1.2 columns take the
criteria of the same column in 1.3. `COSTPLANE_SUPPORTS` is costplane's declaration.
SkuPriceDetails keys must begin with "x_" (costplane emits no FOCUS-defined property), and a
numeric key naming a price must equal ListUnitPrice (the value for one PricingUnit).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"

#: applicability criteria costplane meets (the rest: commitment discounts, capacity reservations,
#: availability zones, contract commitments, split cost allocation, virtual currencies, several
#: account types — costplane has none of them)
COSTPLANE_SUPPORTS = frozenset({
    "USAGE_MEASUREMENT_SUPPORTED", "PUBLIC_PRICE_LIST_SUPPORTED", "UNIT_PRICING_SUPPORTED",
    "NEGOTIATED_PRICING_SUPPORTED", "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED",
    "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED", "SUB_ACCOUNT_SUPPORTED", "TAGGING_SUPPORTED",
    "MULTIPLE_PRICING_CATEGORIES_SUPPORTED",
})

_NUMERIC = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_NULL_RULE = re.compile(r'^(\w+) MUST (NOT )?be (null|"[^"]+") when (.+?)\.?$')
_PRODUCT = (re.compile(r"^(?P<cost>\w+) MUST equal the product of (?P<price>\w+) and (?P<qty>\w+)"),
            re.compile(r"^The product of (?P<price>\w+) and (?P<qty>\w+) MUST match the (?P<cost>\w+)"))
_CLAUSE_NULL = re.compile(r"^(\w+) is (not )?null$")
_CLAUSE_VALUE = re.compile(r'^(\w+) is (not )?("[^"]+"(?: or "[^"]+")*)$')


@dataclass(frozen=True)
class Column:
    id: str
    feature_level: str
    allows_nulls: bool
    data_type: str
    value_format: str
    allowed_values: tuple[str, ...]
    applicability: tuple[str, ...]
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class Clause:
    column: str
    negate: bool
    values: tuple[str, ...] | None  # None: "is null"

    def holds(self, row: Mapping[str, Any]) -> bool:
        value = row.get(self.column)
        hit = value is None if self.values is None else (value is not None and str(value) in self.values)
        return hit != self.negate


@dataclass(frozen=True)
class Rule:
    text: str
    column: str
    kind: str  # null | not_null | value | not_value | non_negative | product
    clauses: tuple[Clause, ...] = ()
    value: str | None = None
    operands: tuple[str, str] = ("", "")  # product: (price, quantity)

    def applies(self, row: Mapping[str, Any]) -> bool:
        return all(clause.holds(row) for clause in self.clauses)


@dataclass
class Report:
    version: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def failed(self, rule: str) -> bool:
        """Some error names this rule or column."""
        return any(rule in error for error in self.errors)


def _clean(text: str) -> str:
    return _LINK.sub(r"\1", text).replace("*", "").replace("Charge Category", "ChargeCategory").strip()


def load_requirements(version: str) -> dict[str, Column]:
    """The columns of FOCUS `version` ("1.2" or "1.3") as the data files state them."""
    v13 = json.loads((DATA / "focus_columns_v1.3.json").read_text())["columns"]
    applicability = {c["id"]: tuple(c.get("applicability") or ()) for c in v13}
    if version == "1.3":
        raw, corrections = v13, json.loads((DATA / "focus_rm_1.3_corrections.json").read_text())
    elif version == "1.2":
        raw, corrections = json.loads((DATA / "focus_columns_v1.2.json").read_text())["columns"], {}
    else:
        raise ValueError(f"unknown FOCUS version {version!r}")
    out = {}
    for c in raw:
        fix = corrections.get(c["id"], {})
        out[c["id"]] = Column(
            id=c["id"], feature_level=c["feature_level"], allows_nulls=c["allows_nulls"] == "True",
            data_type=c["data_type"], value_format=fix.get("value_format", c["value_format"]),
            allowed_values=tuple(fix.get("allowed_values", c["allowed_values"])),
            applicability=applicability.get(c["id"], ()), requirements=tuple(c["requirements"]))
    return out


def _clauses(condition: str) -> tuple[Clause, ...] | None:
    out = []
    for part in condition.split(" and "):
        part = part.strip()
        if m := _CLAUSE_NULL.match(part):
            out.append(Clause(m.group(1), bool(m.group(2)), None))
        elif m := _CLAUSE_VALUE.match(part):
            out.append(Clause(m.group(1), bool(m.group(2)), tuple(re.findall(r'"([^"]+)"', m.group(3)))))
        else:
            return None
    return tuple(out)


def parse_rules(columns: Mapping[str, Column]) -> tuple[list[Rule], list[str]]:
    """The requirement sentences the checker evaluates, and those it cannot read."""
    rules, unparsed = [], []
    for column in columns.values():
        for raw in column.requirements:
            text = _clean(raw)
            if " MUST " not in text or re.search(r"MUST (NOT )?be (present|of type)|MUST conform to"
                                                 r"|MUST NOT be null\.$|MUST be one of the allowed values"
                                                 r"|MUST be a valid decimal value", text):
                continue  # presence, type, format, nullability, allowed values: from the column's fields
            if re.search(r"one and only one parent ServiceCategory|^Property key MUST begin with the string \"x_\""
                         r"|^Property value MUST represent the value for a single PricingUnit", text):
                continue  # checked by hand: _subcategory_parents, _check_price_details
            if m := _NULL_RULE.match(text):
                clauses = _clauses(m.group(4))
                if clauses is not None:
                    negate, value = bool(m.group(2)), m.group(3)
                    kind = ("not_" if negate else "") + ("null" if value == "null" else "value")
                    rules.append(Rule(text, m.group(1), kind, clauses, None if value == "null" else value.strip('"')))
                    continue
            if re.match(rf"^{column.id} MUST be a non-negative decimal value", text):
                rules.append(Rule(text, column.id, "non_negative"))
                continue
            product = next((m for p in _PRODUCT if (m := p.match(text))), None)
            if product is not None and product.group("price") in columns:
                rules.append(Rule(text, product.group("cost"), "product",
                                  (Clause("ChargeClass", True, ("Correction",)),),
                                  operands=(product.group("price"), product.group("qty"))))
                continue
            unparsed.append(text)
    return rules, unparsed


def _subcategory_parents(column: Column) -> dict[str, str]:
    """ServiceSubcategory -> ServiceCategory, from the allowed values' grouping ("… Other (Category)")."""
    parents, group = {}, []
    for value in column.allowed_values:
        group.append(value)
        if m := re.match(r"^Other \((.+)\)$", value):
            parents.update(dict.fromkeys(group, m.group(1)))
            group = []
    return parents


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and _NUMERIC.match(value):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def _arrow_type_error(column: Column, arrow_type: Any) -> str | None:
    """Why a Parquet column of `arrow_type` is not of the column's FOCUS data type."""
    import pyarrow as pa

    kind = column.data_type
    if kind == "Decimal" and not pa.types.is_decimal(arrow_type):
        return f"is {arrow_type} in Parquet, not a decimal"
    if kind == "Date/Time" and not (pa.types.is_timestamp(arrow_type) and arrow_type.tz in ("UTC", "+00:00")):
        return f"is {arrow_type} in Parquet, not a UTC timestamp"
    if kind in ("String", "JSON") and not (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)):
        return f"is {arrow_type} in Parquet, not a string"
    return None


def _value_error(column: Column, value: Any) -> str | None:
    """Why `value` (a CSV string, or a value read from Parquet) breaks the column's type or format."""
    kind = column.data_type
    if kind == "Decimal" and _decimal(value) is None:
        return f"{value!r} is not a decimal in NumericFormat"
    if kind == "Date/Time":
        if isinstance(value, datetime):
            if value.utcoffset() is None or value.utcoffset().total_seconds() != 0:
                return f"{value!r} is not a UTC date-time"
        elif not (isinstance(value, str) and _DATETIME.match(value)):
            return f"{value!r} is not an ISO 8601 UTC date-time such as 2026-11-03T09:30:00Z"
    if kind == "JSON":
        try:
            parsed = json.loads(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return f"{value!r} is not a JSON object (KeyValueFormat)"
    if kind == "String" and not isinstance(value, str):
        return f"{value!r} is not a string"
    if "Currency" in column.value_format and not (isinstance(value, str) and _CURRENCY.match(value)):
        return f"{value!r} is not an ISO 4217 currency code"
    return None


def check_rows(rows: Iterable[Mapping[str, Any]], present: Sequence[str], version: str,
               arrow_types: Mapping[str, Any] | None = None, supports: frozenset[str] = COSTPLANE_SUPPORTS) -> Report:
    """Check a dataset: `present` its columns, `rows` its values (None = null)."""
    spec = load_requirements(version)
    rules, unparsed = parse_rules(spec)
    report = Report(version, unparsed=unparsed, checked=[r.text for r in rules])
    for column in spec.values():
        required = column.feature_level == "Mandatory" or (
            column.feature_level == "Conditional" and column.applicability and set(column.applicability) <= supports)
        if column.id not in present:
            if required:
                report.errors.append(f"column {column.id}: missing ({column.feature_level})")
            elif column.feature_level == "Recommended":
                report.warnings.append(f"column {column.id}: Recommended, absent")
    for name in present:
        if name not in spec and not name.startswith("x_"):
            report.errors.append(f"column {name}: not a FOCUS {version} column and not x_-prefixed")
    if arrow_types:
        for name in present:
            if name in spec and (why := _arrow_type_error(spec[name], arrow_types[name])):
                report.errors.append(f"column {name}: {why}")
    parents = _subcategory_parents(spec["ServiceSubcategory"])
    seen: dict[str, int] = {}

    def fail(key: str, message: str) -> None:
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= 3:
            report.errors.append(message)

    for index, row in enumerate(rows):
        report.rows += 1
        for name in present:
            column, value = spec.get(name), row.get(name)
            if column is None:
                continue
            if value is None:
                if not column.allows_nulls:
                    fail(name, f"row {index} {name}: null, but {name} MUST NOT be null")
                continue
            if why := _value_error(column, value):
                fail(name + "type", f"row {index} {name}: {why}")
            if column.allowed_values and str(value) not in column.allowed_values:
                fail(name + "allowed", f"row {index} {name}: {value!r} is not an allowed value")
        for rule in rules:
            if rule.column not in present or not rule.applies(row):
                continue
            value = row.get(rule.column)
            broken = {
                "null": value is not None, "not_null": value is None,
                "value": value is not None and str(value) != rule.value, "not_value": str(value) == rule.value,
            }.get(rule.kind, False)
            if rule.kind == "non_negative" and value is not None:
                number = _decimal(value)
                broken = number is not None and number < 0
            if rule.kind == "product":
                price, qty, cost = (_decimal(row.get(c)) for c in (*rule.operands, rule.column))
                broken = price is not None and qty is not None and (cost is None or cost != price * qty)
            if broken:
                fail(rule.text, f"row {index} {rule.column}={value!r}: violates \"{rule.text}\"")
        category, sub = row.get("ServiceCategory"), row.get("ServiceSubcategory")
        if sub is not None and category is not None and parents.get(str(sub)) not in (None, category):
            fail("parent", f"row {index} ServiceSubcategory {sub!r}: parent is {parents.get(str(sub))!r}, "
                           f"not ServiceCategory {category!r}")
        _check_price_details(row, index, fail)
    return report


def _check_price_details(row: Mapping[str, Any], index: int, fail: Any) -> None:
    text = row.get("SkuPriceDetails")
    if not isinstance(text, str):
        return
    try:
        details = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return  # reported as a type error
    if not isinstance(details, dict):
        return
    for key, value in details.items():
        if not key.startswith("x_"):
            fail("SkuPriceDetails key", f"row {index} SkuPriceDetails: key {key!r} is neither FOCUS-defined nor x_")
        elif "Price" in key and isinstance(value, Decimal) and _decimal(row.get("ListUnitPrice")) != value:
            fail("SkuPriceDetails unit", f"row {index} SkuPriceDetails {key}={value}: not the price of one "
                                         f"PricingUnit {row.get('PricingUnit')!r} (ListUnitPrice "
                                         f"{row.get('ListUnitPrice')})")


def check_csv(path: Path, version: str, supports: frozenset[str] = COSTPLANE_SUPPORTS) -> Report:
    """Check a CSV export (empty field = null)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [{k: (v if v != "" else None) for k, v in zip(header, line, strict=True)} for line in reader]
    return check_rows(rows, header, version, supports=supports)


def check_parquet(path: Path, version: str, supports: frozenset[str] = COSTPLANE_SUPPORTS) -> Report:
    """Check a Parquet export: column types from the file's schema, values as stored."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    types = {f.name: f.type for f in table.schema}
    return check_rows(table.to_pylist(), table.column_names, version, arrow_types=types, supports=supports)
