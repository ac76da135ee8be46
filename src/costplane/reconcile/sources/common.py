"""What the JSON bill readers share: exact number parsing, pages, typed field access with paths."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from costplane.reconcile.types import ReconcileError

__all__ = ["Field", "iter_buckets", "load_json", "pages_of"]


def load_json(path: Path) -> Any:
    """The file's JSON with every non-integer number as an exact Decimal (never a float)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReconcileError(f"{path}: cannot read the file: {exc}") from None
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ReconcileError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def pages_of(data: Any, path: str) -> list[Mapping[str, Any]]:
    """A downloaded report is one page (`{"data": [...], "has_more": …}`) or a JSON list of pages (what
    `--fetch --save` writes, or pages concatenated by hand)."""
    pages = data if isinstance(data, list) else [data]
    out: list[Mapping[str, Any]] = []
    for index, page in enumerate(pages):
        where = f"{path}: [{index}]" if isinstance(data, list) else path
        if not isinstance(page, Mapping) or not isinstance(page.get("data"), list):
            raise ReconcileError(f"{where}: expected a report page, an object with a \"data\" list of buckets")
        out.append(page)
    return out


class Field:
    """Typed reads of one JSON object, with the object's path in every error."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, Mapping):
            raise ReconcileError(f"{where}: expected an object, got {type(obj).__name__}")
        self.obj: Mapping[str, Any] = obj
        self.where = where

    def count(self, name: str, default: int | None = 0) -> int:
        value = self.obj.get(name)
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ReconcileError(f"{self.where}.{name}: expected a non-negative integer, got {value!r}")
        return value

    def text(self, name: str) -> str | None:
        value = self.obj.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ReconcileError(f"{self.where}.{name}: expected a string or null, got {value!r}")
        return value

    def obj_of(self, name: str) -> Field | None:
        value = self.obj.get(name)
        return None if value is None else Field(value, f"{self.where}.{name}")

    def decimal(self, name: str) -> Decimal:
        value = self.obj.get(name)
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            raise ReconcileError(f"{self.where}.{name}: expected a number, got {value!r}")
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:
            raise ReconcileError(f"{self.where}.{name}: expected a number, got {value!r}") from None
        if not number.is_finite():
            raise ReconcileError(f"{self.where}.{name}: expected a finite number, got {value!r}")
        return number

    def unix(self, name: str) -> datetime:
        value = self.obj.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ReconcileError(f"{self.where}.{name}: expected Unix seconds (an integer), got {value!r}")
        return datetime.fromtimestamp(value, UTC)

    def rfc3339(self, name: str) -> datetime:
        value = self.obj.get(name)
        try:
            at = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if isinstance(value, str) else None
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            raise ReconcileError(f"{self.where}.{name}: expected an RFC 3339 time with an offset, got {value!r}")
        return at.astimezone(UTC)


def iter_buckets(pages: list[Mapping[str, Any]], path: str) -> Iterator[tuple[Field, list[Field]]]:
    """(bucket, its results) of every page, each with its path (`file: [page].data[i].results[j]`)."""
    for p, page in enumerate(pages):
        prefix = f"{path}: [{p}]." if len(pages) > 1 else f"{path}: "
        for b, bucket in enumerate(page["data"]):
            where = f"{prefix}data[{b}]"
            fields = Field(bucket, where)
            results = fields.obj.get("results", fields.obj.get("result"))
            if not isinstance(results, list):
                raise ReconcileError(f"{where}.results: expected a list of results")
            yield fields, [Field(r, f"{where}.results[{i}]") for i, r in enumerate(results)]
