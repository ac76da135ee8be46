"""Exact money: every amount is an integer of nano-USD (1e-9 USD).

Binary floats never hold money here. Parsing accepts the forms people write in
YAML and on the command line ("5000 USD", "0.12", "$3.50") and rejects anything
that would need rounding below a nano-dollar.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = [
    "NANO_PER_USD",
    "MoneyError",
    "decimal_to_nano",
    "format_usd",
    "nano_to_decimal",
    "parse_usd",
]

NANO_PER_USD = 1_000_000_000

_AMOUNT = re.compile(r"^\s*\$?\s*(?P<num>[0-9][0-9_,]*(?:\.[0-9]+)?)\s*(?P<cur>[A-Za-z]{3})?\s*$")


class MoneyError(ValueError):
    """An amount that is not a valid, exact USD figure."""


def parse_usd(text: str | int | Decimal) -> int:
    """Parse "5000 USD", "$0.12", "12.5" or an int/Decimal of dollars into nano-USD.

    Floats are refused on purpose: YAML `amount: 0.1` is read as a string by the
    bundle loader before it gets here.
    """
    if isinstance(text, bool):
        raise MoneyError(f"expected an amount such as '5000 USD', got {text!r}")
    if isinstance(text, int):
        return text * NANO_PER_USD
    if isinstance(text, Decimal):
        return decimal_to_nano(text, exact=True)
    if not isinstance(text, str):
        raise MoneyError(f"expected an amount such as '5000 USD', got {type(text).__name__} {text!r}")
    match = _AMOUNT.match(text)
    if match is None:
        raise MoneyError(f"expected an amount such as '5000 USD' or '0.12 USD', got {text!r}")
    currency = (match.group("cur") or "USD").upper()
    if currency != "USD":
        raise MoneyError(f"only USD amounts are supported, got {currency!r} in {text!r}")
    try:
        value = Decimal(match.group("num").replace("_", "").replace(",", ""))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
        raise MoneyError(f"not a number: {text!r}") from exc
    return decimal_to_nano(value, exact=True)


def decimal_to_nano(value: Decimal, *, exact: bool = False, ceiling: bool = False) -> int:
    """Convert a USD Decimal to nano-USD.

    exact=True refuses a value with more precision than a nano-dollar; otherwise
    the value is rounded half-up (or up, with ceiling=True, for worst-case bounds).
    """
    scaled = value * NANO_PER_USD
    if exact:
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{value} USD has more precision than 1e-9 USD")
        return int(scaled)
    rounding = ROUND_CEILING if ceiling else ROUND_HALF_UP
    return int(scaled.to_integral_value(rounding=rounding))


def nano_to_decimal(nano: int) -> Decimal:
    """nano-USD to a USD Decimal (exact)."""
    return Decimal(nano).scaleb(-9)


def format_usd(nano: int, *, places: int | None = None) -> str:
    """Render nano-USD as a plain decimal string: 1_500_000 -> '0.0015'.

    With places=None every significant digit is kept (used in headers and
    exports); with places=N the value is rounded half-up for display.
    """
    value = nano_to_decimal(nano)
    if places is not None:
        return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
