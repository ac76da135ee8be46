"""The personas of the demo and the mixed workload they drive through the gateway.

Each job is one unit of work (a support ticket, an experiment run, an agent run, a re-index
pass, an ad campaign) that starts at a seeded moment of the run, so the live view fills up
steadily; steps within a job are sequential, like a real agent's.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from costplane.demo import corpus
from costplane.demo.calls import Clients, Outcome
from costplane.demo.vendors import VendorClients

__all__ = ["DEFAULT_REQUESTS", "Plan", "Workload", "plan_for"]

DEFAULT_REQUESTS = 250
EXPERIMENT_BAGGAGE = "costplane.experiment=fraud-train,costplane.pipeline=fraud-detection"


@dataclass(frozen=True, slots=True)
class Plan:
    """How big the workload is and how long it is spread over."""

    duration: float  # seconds over which jobs start
    tickets: int = 30
    experiment_runs: int = 6
    research_runs: int = 4
    kb_docs: int = 12
    growth_workers: int = 3
    concierge_runs: int = 8
    documents: int = 5
    claims: int = 6
    invoices: int = 9


def plan_for(duration: float, requests: int = DEFAULT_REQUESTS) -> Plan:
    """Scale the persona sizes to roughly `requests` calls; every behaviour stays in."""
    scale = max(requests, 1) / DEFAULT_REQUESTS
    return Plan(duration=max(duration, 1.0), tickets=max(4, round(30 * scale)),
                experiment_runs=max(3, round(6 * scale)), research_runs=max(1, round(4 * scale)),
                kb_docs=max(3, round(12 * scale)), concierge_runs=max(4, round(8 * scale)),
                documents=max(3, round(5 * scale)), claims=max(3, round(6 * scale)),
                invoices=max(6, round(9 * scale)))


Job = Callable[[], Coroutine[Any, Any, None]]


class Workload:
    def __init__(self, clients: Clients, vendors: VendorClients, plan: Plan, seed: int) -> None:
        self.clients = clients
        self.vendors = vendors
        self.plan = plan
        self.seed = seed
        self._pace = plan.duration / 25.0
        self._start = time.monotonic()

    def jobs(self) -> list[Job]:
        p = self.plan
        jobs: list[Job] = []
        jobs += [self._bind(self.support_ticket, 1001 + i) for i in range(p.tickets)]
        jobs += [self._bind(self.experiment_run, j + 1) for j in range(p.experiment_runs)]
        jobs += [self._bind(self.research_run, r + 1) for r in range(p.research_runs)]
        jobs += [self.research_loop, self.research_crawler, self.research_deep_dive]
        jobs += [self._bind(self.kb_reindex, n + 1) for n in range(3)]
        jobs += [self._bind(self.growth_campaign, w + 1) for w in range(p.growth_workers)]
        jobs += [self._bind(self.concierge_conversation, c + 1) for c in range(p.concierge_runs)]
        jobs += [self.concierge_retry_storm]
        jobs += [self._bind(self.enrich_document, d + 1) for d in range(p.documents)]
        jobs += [self._bind(self.triage_claim, c + 1) for c in range(p.claims)]
        jobs += [self.invoice_copilot]
        return jobs

    async def run(self) -> None:
        self._start = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for job in self.jobs():
                group.create_task(job())

    # -- timing ---------------------------------------------------------------------------
    @staticmethod
    def _bind(method: Callable[[int], Coroutine[Any, Any, None]], arg: int) -> Job:
        return lambda: method(arg)

    def _rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    async def _at(self, fraction: float) -> None:
        """Sleep until `fraction` of the planned duration has passed."""
        delay = self._start + fraction * self.plan.duration - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _think(self, rng: random.Random, low: float = 0.05, high: float = 0.3) -> None:
        await asyncio.sleep(rng.uniform(low, high) * self._pace)

    # -- support: the support-bot agent, one run per ticket ----------------------------------
    async def support_ticket(self, number: int) -> None:
        rng = self._rng(f"ticket-{number}")
        await self._at(rng.uniform(0.0, 0.85))
        text = corpus.ticket(rng, number)
        run = {"x-costplane-run": f"t-{number}"}
        steps = rng.randint(2, 4)
        outcome = "resolved" if rng.random() < 0.8 else "escalated"
        for step in range(1, steps + 1):
            headers = dict(run)
            if step == steps:
                headers["x-costplane-outcome"] = outcome
            if step == 1:
                result = await self.clients.chat(
                    "support-bot", "gpt-4o-mini", f"Classify this ticket (billing/auth/bug/howto): {text}",
                    {**headers, "x-costplane-step": "classify"}, max_tokens=60)
            elif step == 2:
                # Every tenth ticket drags its whole e-mail thread along: a prompt-inflation notice.
                thread = corpus.filler(rng, 12_500 if number % 10 == 2 else 90)
                result = await self.clients.message(
                    "support-bot", "claude-haiku-4-5", f"Draft a reply to: {text}\nContext: {thread}",
                    {**headers, "x-costplane-step": "draft", "x-costplane-tool": "kb.search"},
                    max_tokens=400, stream=number % 3 == 0)
            elif step == 3:
                result = await self.clients.chat(
                    "support-bot", "gpt-4o-mini", f"Check this draft for tone and accuracy: {text}",
                    {**headers, "x-costplane-step": "review"}, max_tokens=200, stream=number % 2 == 0)
            else:
                result = await self.clients.message(
                    "support-bot", "claude-haiku-4-5", f"Write the final e-mail for: {text}",
                    {**headers, "x-costplane-step": "reply", "x-costplane-tool": "email.send"},
                    max_tokens=300, stream=True)
            if not result.ok:
                return
            await self._think(rng)

    # -- ml: the fraud-train experiment (experiment tier) -------------------------------------
    async def experiment_run(self, number: int) -> None:
        rng = self._rng(f"exp-{number}")
        await self._at(rng.uniform(0.0, 0.8))
        base = {"x-costplane-run": f"exp-{number}", "baggage": EXPERIMENT_BAGGAGE}
        for step in range(1, 5):
            prompt = f"Fraudulent? Answer yes/no with one reason. {corpus.transaction(rng)}"
            await self.clients.chat("ml-experiments", "gpt-4o", prompt,
                                    {**base, "x-costplane-step": f"label-{step}"}, max_tokens=120)
            await self._think(rng)
        if number % 3 == 2:
            model = "o3-mini" if number % 2 == 0 else "o1"
            await self.clients.chat("ml-experiments", model, "Reason step by step about the label errors.",
                                    {**base, "x-costplane-step": "reasoning-check"})
        if number % 2 == 1:
            batch = "\n".join(corpus.transaction(rng) for _ in range(240))
            await self.clients.chat("ml-experiments", "gpt-4o", f"Find the fraud ring in:\n{batch}",
                                    {**base, "x-costplane-step": "batch-analysis"}, max_tokens=2048)

    # -- ml: the research agent ----------------------------------------------------------------
    async def research_run(self, number: int) -> None:
        rng = self._rng(f"research-{number}")
        await self._at(rng.uniform(0.0, 0.8))
        run = {"x-costplane-run": f"r-{number}"}
        topic = rng.choice(("card testing", "account takeover", "refund abuse", "mule accounts"))
        for step in range(1, rng.randint(3, 5) + 1):
            headers = {**run, "x-costplane-step": f"step-{step}"}
            if step % 3 == 1:
                result = await self.clients.chat("research-agent", "gpt-4o", f"Plan step {step} on {topic}.",
                                                  {**headers, "x-costplane-tool": "planner"}, max_tokens=200)
            elif step % 3 == 2:
                sources = corpus.filler(rng, 300)
                result = await self.clients.message(
                    "research-agent", "claude-sonnet-4-6", f"Summarise the sources on {topic}: {sources}",
                    {**headers, "x-costplane-tool": "web.search"}, max_tokens=2048)
            else:
                result = await self.clients.chat("research-agent", "gpt-4o-mini", f"List facts on {topic}.",
                                                  {**headers, "x-costplane-tool": "extract"}, stream=True)
            if not result.ok:
                return
            await self._think(rng)

    async def research_loop(self) -> None:
        """A stuck agent: the same search again and again in one run, until the loop guard stops it."""
        rng = self._rng("research-loop")
        await self._at(0.2)
        headers = {"x-costplane-run": "r-loop-1", "x-costplane-step": "search",
                   "x-costplane-tool": "web.search"}
        for _ in range(12):
            result = await self.clients.chat("research-agent", "gpt-4o-mini",
                                             "Search the web for: newest card-testing patterns 2025", headers,
                                             max_tokens=150)
            if not result.ok:
                return
            await self._think(rng, 0.1, 0.4)

    async def research_crawler(self) -> None:
        """A run that fetches page after page, until the per-run call limit stops it."""
        rng = self._rng("research-crawler")
        await self._at(0.3)
        for page in range(1, 61):
            headers = {"x-costplane-run": "r-crawl-1", "x-costplane-step": f"fetch-{page}",
                       "x-costplane-tool": "web.fetch"}
            result = await self.clients.chat(
                "research-agent", "gpt-4o-mini", f"List the claims of page {page}: {corpus.filler(rng, 40)}",
                headers, max_tokens=80)
            if not result.ok:
                return
            await self._think(rng, 0.01, 0.04)

    async def research_deep_dive(self) -> None:
        """Long contexts on a large model: the per-run dollar limit stops the run."""
        rng = self._rng("research-deep")
        await self._at(0.45)
        for step in range(1, 21):
            context = corpus.document(rng, 10_000, f"Regulatory filing {step}")
            headers = {"x-costplane-run": "r-deep-1", "x-costplane-step": f"read-{step}",
                       "x-costplane-tool": "file.read"}
            result = await self.clients.message(
                "research-agent", "claude-sonnet-4-6", f"Find each mention of chargebacks:\n{context}",
                headers, max_tokens=1024)
            if not result.ok:
                return
            await self._think(rng, 0.1, 0.3)

    # -- support: the knowledge-base indexer (embeddings, response cache) ------------------------
    async def kb_reindex(self, number: int) -> None:
        rng = self._rng("kb-articles")  # the same articles on every pass: that is what the cache saves
        articles = corpus.kb_articles(rng, self.plan.kb_docs)
        await self._at((0.05, 0.4, 0.75)[(number - 1) % 3])
        headers = {"x-costplane-run": f"reindex-{number}", "x-costplane-step": "embed",
                   "x-costplane-cache": "on"}
        for article in articles:
            await self.clients.embed("kb-indexer", "text-embedding-3-small", [article], headers)

    # -- growth: ad copy on gpt-4o until the tiny daily budget runs out -----------------------
    async def growth_campaign(self, worker: int) -> None:
        rng = self._rng(f"growth-{worker}")
        await self._at(0.02 + 0.04 * worker)
        interval = self.plan.duration * 0.75 / 12
        for number in range(1, 121):
            result: Outcome = await self.clients.chat(
                "growth-campaigns", "gpt-4o", corpus.ad_brief(rng, number),
                {"x-costplane-project": f"launch-{worker}", "x-costplane-step": "copy"}, max_tokens=400)
            if not result.ok and result.status == 402:
                return  # the campaign is paused: the budget is spent
            await asyncio.sleep(rng.uniform(0.6, 1.4) * interval)

    # -- support: the concierge, an openai-agents agent on the SDK's default model (Responses API) ---
    async def concierge_conversation(self, number: int) -> None:
        """One agent run: the model calls the order tool, then answers; its daily budget runs out."""
        rng = self._rng(f"concierge-{number}")
        await self._at(0.1 + 0.75 * (number - 1) / max(self.plan.concierge_runs, 1))
        order = f"A-{1001 + (number - 1) % 4}"
        question = f"{corpus.ticket(rng, 2000 + number)} Where is my order {order}?"
        await self.vendors.agent_run("concierge", question, {"x-costplane-run": f"c-{number}"}, max_tokens=300)

    async def concierge_retry_storm(self) -> None:
        """A chat widget that resubmits the same conversation in one run until the loop guard stops it (429)."""
        rng = self._rng("concierge-retry")
        await self._at(0.35)
        for _ in range(8):
            result = await self.vendors.agent_run("concierge", "Where is my order A-1002? It says waiting for payment.",
                                                  {"x-costplane-run": "c-retry-1"}, max_tokens=300)
            if not result.ok:
                return
            await self._think(rng, 0.05, 0.15)

    # -- ml: the document-enrichment pipeline on Gemini (google-genai: embed + generate) ------------
    async def enrich_document(self, number: int) -> None:
        rng = self._rng(f"doc-{number}")
        await self._at(rng.uniform(0.05, 0.8))
        run = f"doc-{number}"
        long = number == 2  # one long contract: it keeps gemini-2.5-pro, its output capped
        words = 3_600 if long else rng.randint(150, 400)
        text = corpus.document(rng, words, f"Supplier contract {number}")
        chunks = [text[i:i + 2_000] for i in range(0, min(len(text), 6_000), 2_000)]
        embedded = await self.vendors.gemini_embed(
            "doc-pipeline", "gemini-embedding-001", chunks,
            {"x-costplane-run": run, "x-costplane-step": "embed", "x-costplane-tool": "vector.upsert"})
        if not embedded.ok:
            return
        await self._think(rng)
        await self.vendors.gemini_generate(
            "doc-pipeline", "gemini-2.5-pro", f"Summarise the obligations and deadlines of:\n{text}",
            {"baggage": f"costplane.run={run},costplane.step=summarise"}, max_tokens=2048, stream=number % 2 == 1)

    # -- finance: the claims-triage pipeline on Bedrock Converse (boto3) ---------------------------
    async def triage_claim(self, number: int) -> None:
        rng = self._rng(f"claim-{number}")
        await self._at(rng.uniform(0.05, 0.8))
        claim = f"Claim #{5000 + number}: {corpus.transaction(rng)}. {corpus.filler(rng, 120)}"
        run = {"x-costplane-run": f"claim-{number}"}
        triage = await self.vendors.converse(
            "claims-pipeline", "amazon.nova-lite-v1:0", f"Classify this insurance claim: {claim}",
            {**run, "x-costplane-step": "triage"}, max_tokens=100, system="You triage insurance claims.")
        if not triage.ok:
            return
        await self._think(rng)
        if number % 3 == 1:
            # the hard cases go to the largest model, which pipelines may not call: refused, then Nova Pro
            escalated = await self.vendors.converse(
                "claims-pipeline", "us.anthropic.claude-opus-4-1-20250805-v1:0", f"Assess the fraud risk: {claim}",
                {**run, "x-costplane-step": "escalate"}, max_tokens=800)
            model = "amazon.nova-pro-v1:0" if not escalated.ok else ""
        else:
            model = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
        if model:
            await self.vendors.converse("claims-pipeline", model, f"Write the adjuster's summary of: {claim}",
                                        {**run, "x-costplane-step": "summarise"}, max_tokens=400)

    # -- finance: the invoice copilot on Azure OpenAI deployments; short invoices go to the mini deployment -
    async def invoice_copilot(self) -> None:
        rng = self._rng("invoice-copilot")
        await self._at(0.05)
        interval = self.plan.duration * 0.8 / max(self.plan.invoices, 1)
        for number in range(1, self.plan.invoices + 1):
            lines = corpus.filler(rng, 500 if number % 3 == 0 else 60)  # every third invoice has many lines
            invoice = f"Invoice INV-{7000 + number}: {corpus.transaction(rng)}; {lines}"
            await self.vendors.azure_chat(
                "invoice-copilot", "invoices-4o", f"Extract vendor, amount, due date and GL code: {invoice}",
                {"x-costplane-run": f"inv-{number}", "x-costplane-step": "extract"}, max_tokens=300,
                stream=number % 4 == 0)
            await asyncio.sleep(rng.uniform(0.6, 1.4) * interval)
