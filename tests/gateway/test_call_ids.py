"""The gateway records on its cost event the ids that find the same call again: the provider's
response id (OpenAI `chatcmpl-…`, Anthropic `msg_…`, from plain bodies and streams) and the trace
id and parent id of the client's `traceparent`."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from costplane.ledger.types import CostEvent

from .conftest import Harness

TRACE, PARENT = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
TRACEPARENT = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
ASK = [{"role": "user", "content": "Say hello."}]


def _event(gw: Harness, decision_id: str) -> CostEvent:
    """The call's event once the gateway's background writer stored its ids (polled, bounded)."""
    end = time.monotonic() + 20
    while True:
        (event,) = [e for e in gw.app.store.list_events(limit=20) if e.decision_id == decision_id]
        if event.response_id or time.monotonic() > end:
            return event
        time.sleep(0.01)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_openai_response_id_and_traceparent(stream: bool, make_gateway: Callable[..., Harness]) -> None:
    gw = make_gateway()
    client = gw.openai(gw.key(team="apps"))
    if stream:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, max_tokens=20, stream=True, extra_headers=TRACEPARENT)
        chunks = list(raw.parse())
        decision = raw.headers["x-costplane-decision-id"]
        ids = {c.id for c in chunks}
    else:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK, max_tokens=20,
                                                               extra_headers=TRACEPARENT)
        decision, ids = raw.headers["x-costplane-decision-id"], {raw.parse().id}
    event = _event(gw, decision)
    assert ids == {event.response_id} and str(event.response_id).startswith("chatcmpl-")
    assert (event.trace_id, event.span_id) == (TRACE, PARENT)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_anthropic_message_id_without_traceparent(stream: bool, make_gateway: Callable[..., Harness]) -> None:
    gw = make_gateway()
    client = gw.anthropic(gw.key(team="apps"))
    if stream:
        raw = client.messages.with_raw_response.create(model="claude-3-5-haiku-latest", max_tokens=20, messages=ASK,
                                                       stream=True)
        message_ids = {e.message.id for e in raw.parse() if e.type == "message_start"}
        decision = raw.headers["x-costplane-decision-id"]
    else:
        raw = client.messages.with_raw_response.create(model="claude-3-5-haiku-latest", max_tokens=20, messages=ASK)
        decision, message_ids = raw.headers["x-costplane-decision-id"], {raw.parse().id}
    event = _event(gw, decision)
    assert message_ids == {event.response_id} and str(event.response_id).startswith("msg_")
    assert (event.trace_id, event.span_id) == (None, None)
