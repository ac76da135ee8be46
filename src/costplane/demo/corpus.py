"""Seeded, offline text for the demo's prompts: tickets, transactions, documents, ad briefs."""

from __future__ import annotations

import random

__all__ = ["ad_brief", "document", "filler", "kb_articles", "ticket", "transaction"]

_PRODUCTS = ("Atlas router", "Nimbus backup", "Quill editor", "Harbor VPN", "Pulse monitor",
             "Ember thermostat")
_ISSUES = (
    "cannot log in after the password reset",
    "was charged twice for the annual plan",
    "sees a sync error when uploading large files",
    "wants to move the subscription to another account",
    "gets a timeout when exporting the monthly report",
    "asks how to enable two-factor authentication",
    "reports that notifications stopped arriving",
    "needs an invoice with the company VAT number",
)
_MERCHANTS = ("grocer", "airline", "electronics", "fuel", "pharmacy", "marketplace", "casino", "hotel")
_WORDS = (
    "ledger", "latency", "policy", "budget", "invoice", "cluster", "gradient", "fraud", "merchant",
    "velocity", "threshold", "signal", "feature", "embedding", "customer", "session", "anomaly",
    "pipeline", "baseline", "variance", "forecast", "quarter", "region", "device", "pattern", "model",
    "review", "network", "capacity", "window", "evidence", "report", "summary", "dataset", "label",
)


def filler(rng: random.Random, words: int) -> str:
    """`words` words of plausible-looking prose, in sentences."""
    out: list[str] = []
    sentence = 0
    for _ in range(words):
        word = rng.choice(_WORDS)
        out.append(word.capitalize() if sentence == 0 else word)
        sentence += 1
        if sentence >= rng.randint(8, 16):
            out[-1] += "."
            sentence = 0
    return " ".join(out) + "."


def ticket(rng: random.Random, number: int) -> str:
    product = rng.choice(_PRODUCTS)
    return (f"Ticket #{number}: a customer using {product} {rng.choice(_ISSUES)}. "
            f"Account age {rng.randint(1, 60)} months, plan {rng.choice(('free', 'pro', 'team'))}.")


def transaction(rng: random.Random) -> str:
    return (f"amount={rng.randint(5, 4000)}.{rng.randint(0, 99):02d} merchant={rng.choice(_MERCHANTS)} "
            f"country={rng.choice(('DE', 'US', 'BR', 'NG', 'SG'))} hour={rng.randint(0, 23)} "
            f"card_age_days={rng.randint(1, 2000)} velocity_1h={rng.randint(0, 9)}")


def document(rng: random.Random, words: int, title: str) -> str:
    return f"# {title}\n\n{filler(rng, words)}"


def kb_articles(rng: random.Random, count: int) -> list[str]:
    """Help-centre articles, each a few hundred words."""
    return [document(rng, rng.randint(120, 260), f"How to fix: {product} — {issue}")
            for product, issue in ((rng.choice(_PRODUCTS), rng.choice(_ISSUES)) for _ in range(count))]


def ad_brief(rng: random.Random, number: int) -> str:
    product = rng.choice(_PRODUCTS)
    return (f"Write variant {number} of a launch ad for {product}. Audience: "
            f"{rng.choice(('small businesses', 'students', 'IT admins', 'families'))}. Brand notes: "
            f"{filler(rng, 220)}")
