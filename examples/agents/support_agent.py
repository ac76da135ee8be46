"""A scripted support agent: triage → knowledge-base search → answer, one guarded run per ticket.

It runs against any OpenAI-compatible endpoint: the costplane gateway (gateway mode, with a
costplane key) or a provider directly (direct mode: costplane meters and records itself).
Offline, point it at the upstream simulator:

    costplane simulate-upstream --port 9001 &
    python examples/agents/support_agent.py --direct http://127.0.0.1:9001/v1 --store sqlite:///support.db
    costplane outcomes report ticket_resolved --store sqlite:///support.db
    costplane runs show ticket-1001 --store sqlite:///support.db

Each resolved ticket records the outcome `ticket_resolved`; unresolved tickets still cost
money, and the cost-per-outcome report counts them (that is the waste).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import costplane

__all__ = ["TICKETS", "Ticket", "TicketResult", "handle_ticket", "run_support_agent"]

MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class Ticket:
    id: str
    text: str
    resolvable: bool  # scripted: whether the knowledge base has the answer


@dataclass
class TicketResult:
    ticket: str
    run: str
    resolved: bool
    usages: list[Any] = field(default_factory=list)  # the usage objects the provider returned


TICKETS: tuple[Ticket, ...] = (
    Ticket("1001", "My parcel was due on Monday and has not arrived.", True),
    Ticket("1002", "How do I reset my password?", True),
    Ticket("1003", "I was charged twice for order 5531.", True),
    Ticket("1004", "Your app crashes when I upload a 4 GB video on my fridge.", False),
    Ticket("1005", "Can I change the delivery address of an order in transit?", True),
)


def handle_ticket(client: Any, ticket: Ticket, *, budget_usd: str = "0.05") -> TicketResult:
    """One guarded agent run for one ticket (run id `ticket-<id>`)."""
    result = TicketResult(ticket.id, f"ticket-{ticket.id}", False)
    with costplane.agent_run("support-bot", run=result.run, budget_usd=budget_usd, max_steps=6, max_tool_calls=2,
                             tier="production"):
        with costplane.step("triage"):
            triage = client.chat.completions.create(model=MODEL, max_tokens=30, messages=[
                {"role": "system", "content": "Classify the ticket: shipping, account, billing or other."},
                {"role": "user", "content": ticket.text}])
            result.usages.append(triage.usage)
        with costplane.tool("kb_search"):
            found = ticket.resolvable  # a scripted knowledge base
        with costplane.step("answer"):
            answer = client.chat.completions.create(model=MODEL, max_tokens=80, messages=[
                {"role": "system", "content": "Answer the customer using the knowledge-base article."},
                {"role": "user", "content": ticket.text},
                {"role": "assistant", "content": "article: " + ("found" if found else "none")}])
            result.usages.append(answer.usage)
        if found:
            costplane.outcome("ticket_resolved")
            result.resolved = True
    return result


def run_support_agent(client: Any, tickets: Sequence[Ticket] = TICKETS) -> list[TicketResult]:
    return [handle_ticket(client, ticket) for ticket in tickets]


def main() -> None:
    import openai

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--gateway", help="costplane gateway base URL, e.g. http://127.0.0.1:8080/v1")
    where.add_argument("--direct", help="provider base URL, e.g. the simulator http://127.0.0.1:9001/v1")
    parser.add_argument("--key", default="sk-none", help="API key (a cpk_… key for the gateway)")
    parser.add_argument("--store", default="sqlite:///costplane.db", help="where runs and outcomes are recorded")
    args = parser.parse_args()
    with costplane.Session(args.store) as session:
        mode = "gateway" if args.gateway else "direct"
        client = costplane.instrument(openai.OpenAI(base_url=args.gateway or args.direct, api_key=args.key),
                                      mode=mode, session=session)
        with session.activate(), costplane.context(team="support"):
            results = [handle_ticket(client, t) for t in TICKETS]
            for r in results:
                print(f"ticket {r.ticket}: {'resolved' if r.resolved else 'not resolved'} (run {r.run})")


if __name__ == "__main__":
    main()
