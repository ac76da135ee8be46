"""Background responses keep their reservation until they finish: settled with the response's own
usage when the gateway's poll (or a forwarded GET/cancel) shows it finished, at the bound when the
reservation is about to expire; the creator's key can reach a held response, no other key can."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from costplane.app import Application
from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.core.requests import Admission, LlmRequest
from costplane.gateway.protocols.base import Enforced, Incoming
from costplane.gateway.protocols.openai_responses import (
    ADAPTER,
    BackgroundResponses,
    HeldResponse,
    StoreResponseLookup,
)
from costplane.gateway.upstream import AiohttpTransport
from costplane.ledger.types import CallIds
from costplane.pricing.types import TokenUsage
from costplane.serving import BackgroundServer

from .conftest import gateway_config

KEY = "key_bg"


class Call:
    """One background request admitted by the real decision core and sent to the simulator."""

    def __init__(self, app: Application, transport: AiohttpTransport) -> None:
        self.app = app
        self.transport = transport
        self.settled: list[tuple[str, str]] = []

    async def settle(self, admission: Admission, usage: TokenUsage, status: str, response_id: str) -> None:
        self.settled.append((status, response_id))
        await asyncio.to_thread(self.app.core.settle, admission, usage, status=status, ids=CallIds(response_id))

    async def create(self) -> tuple[dict[str, Any], HeldResponse[Admission]]:
        raw = orjson.dumps({"model": "gpt-4o-mini", "input": "Write the long report.", "background": True})
        incoming = Incoming("POST", "/v1/responses", {}, {}, {}, raw)
        facts = ADAPTER.parse(ADAPTER.routes[0], incoming, self.app.config.gateway)
        request = LlmRequest("openai", facts.endpoint, facts.model, facts.size.bound, facts.size.estimate,
                             facts.max_tokens)
        admission = self.app.core.admit(Context(team="bg", key_id=KEY), request)
        assert isinstance(admission, Admission) and admission.reservation is not None
        up = ADAPTER.build_upstream(facts, Enforced(admission.provider, admission.model, admission.max_tokens, {}),
                                    incoming)
        reply = await self.transport.send(up.method, up.url, up.headers, up.body, 10)
        payload = orjson.loads(await reply.read())
        bound = TokenUsage(request.input_bound, admission.max_tokens)
        return payload, HeldResponse(KEY, admission.provider, admission.model, bound,
                                     admission.reservation.expires_at, admission)


@pytest.fixture
def app(tmp_path: Path, simulator: BackgroundServer) -> Any:
    application = Application(parse_config(gateway_config(simulator.url, f"sqlite:///{tmp_path}/bg.db", None),
                                           base=tmp_path))
    yield application
    application.close()


def test_held_until_the_poll_sees_it_finished(app: Application) -> None:
    async def scenario() -> None:
        call = Call(app, AiohttpTransport())
        held = BackgroundResponses(StoreResponseLookup(app.store), call.settle, call.transport)
        payload, entry = await call.create()
        assert payload["status"] == "queued" and held.hold(payload, entry)
        assert app.store.open_reservations() == 1 and app.store.list_events() == []
        record = held.find(payload["id"])
        assert record is not None and record.key_id == KEY
        assert record.input_tokens + record.output_tokens == entry.bound.input_tokens + entry.bound.output_tokens
        assert await held.sweep() == 0  # still running: nothing settled, the reservation is kept
        for _ in range(50):
            await asyncio.sleep(0.05)
            if await held.sweep():
                break
        assert call.settled == [("ok", payload["id"])] and len(held) == 0
        reply = await call.transport.send("GET", f"{entry.provider.base_url}/responses/{payload['id']}", {}, None, 10)
        final = orjson.loads(await reply.read())
        (event,) = app.store.list_events()
        assert (event.usage.input_tokens, event.usage.output_tokens) == (final["usage"]["input_tokens"],
                                                                         final["usage"]["output_tokens"])
        assert event.response_id == payload["id"] and event.status == "ok"
        assert app.store.open_reservations() == 0
        assert held.find(payload["id"]) is not None  # now found through its cost event
        await call.transport.close()
    asyncio.run(scenario())


def test_a_cancel_read_through_the_gateway_settles_it(app: Application) -> None:
    async def scenario() -> None:
        call = Call(app, AiohttpTransport())
        held = BackgroundResponses(None, call.settle, call.transport)
        payload, entry = await call.create()
        assert held.hold(payload, entry)
        assert not await held.observe(payload)  # queued: not finished
        reply = await call.transport.send("POST", f"{entry.provider.base_url}/responses/{payload['id']}/cancel", {},
                                          b"", 10)
        cancelled = orjson.loads(await reply.read())
        assert cancelled["status"] == "cancelled"
        assert await held.observe(cancelled)
        (event,) = app.store.list_events()
        assert event.usage.input_tokens == cancelled["usage"]["input_tokens"] and event.usage.output_tokens == 0
        assert app.store.open_reservations() == 0 and held.find(payload["id"]) is None
        await call.transport.close()
    asyncio.run(scenario())


def test_settled_at_the_bound_before_the_reservation_expires(app: Application) -> None:
    async def scenario() -> None:
        call = Call(app, AiohttpTransport())
        late = datetime.now(UTC)
        held = BackgroundResponses(None, call.settle, call.transport, clock=lambda: late)
        payload, entry = await call.create()
        assert held.hold(payload, entry)
        late = entry.expires  # the clock reaches the reservation's expiry
        assert await held.sweep() == 1
        (event,) = app.store.list_events()
        assert event.status == "estimated"
        assert (event.usage.input_tokens, event.usage.output_tokens) == (entry.bound.input_tokens,
                                                                         entry.bound.output_tokens)
        assert event.cost_nano == entry.claim.worst_nano
        assert app.store.open_reservations() == 0
        await call.transport.close()
    asyncio.run(scenario())


def test_only_running_background_responses_are_held(app: Application) -> None:
    held = BackgroundResponses(None, lambda *args: asyncio.sleep(0), AiohttpTransport())
    entry: Any = None
    assert not held.hold({"id": "resp_1", "status": "completed"}, entry)
    assert not held.hold({"status": "queued"}, entry)
    assert not held.hold(None, entry)
    assert len(held) == 0 and held.find("resp_1") is None
