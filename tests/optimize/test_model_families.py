"""Over-sizing and tier leakage never route a chat model to an embedding model, however cheap it is."""

from __future__ import annotations

from datetime import timedelta

import pytest

from costplane.attribution.context import Context
from costplane.optimize.detectors import run_detectors
from costplane.optimize.findings import DetectorInput, Finding
from costplane.optimize.history import History
from costplane.optimize.synthetic import SyntheticSpec, _Builder, _embed, synthetic_config
from costplane.pricing.catalog import Catalog

CATALOG = Catalog.load()
INPUTS = DetectorInput(synthetic_config(), CATALOG)
DETECTORS = ["model_oversizing", "tier_leakage"]


def rag_agent(with_small_chat_model: bool) -> list[Finding]:
    """Agent rag-bot embeds with text-embedding-3-small and answers short questions on gpt-4o in the
    experiment tier; optionally it also uses gpt-4o-mini."""
    b = _Builder(SyntheticSpec(seed=3), CATALOG)
    production = Context(team="support", agent="rag-bot", tier="production")
    experiment = Context(team="support", agent="rag-bot", tier="experiment")
    for i in range(60):
        _embed(b, b.when(), production, "text-embedding-3-small", 400, f"doc-{i}")
    for _ in range(1500):
        b.call(b.when(), experiment, "gpt-4o", 300, 100)
    if with_small_chat_model:
        for _ in range(60):
            b.call(b.when(), production, "gpt-4o-mini", 300, 100)
    end = b.spec.start + timedelta(days=b.spec.days)
    history = History.build(b.spec.start, end, tuple(b.decisions), tuple(b.events))
    return run_detectors(history, INPUTS, DETECTORS)


def test_no_route_to_an_embedding_model() -> None:
    assert rag_agent(with_small_chat_model=False) == []


@pytest.mark.parametrize("detector", DETECTORS)
def test_the_small_chat_model_is_chosen(detector: str) -> None:
    found = [f for f in rag_agent(with_small_chat_model=True) if f.detector == detector]
    assert [(f.evidence["large_model"], f.evidence["small_model"]) for f in found] == [("gpt-4o", "gpt-4o-mini")]
    assert 'set: {model: "gpt-4o-mini"}' in found[0].document
