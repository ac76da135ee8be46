"""`GET /v1/responses/{id}/input_items`: the simulator lists a stored response's input items as
OpenAI does (a cursor page), and the OpenAI SDK reads them through the gateway."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest

from costplane.serving import BackgroundServer

from .conftest import Harness


def _client(simulator: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{simulator.url}/v1", api_key="sk-sim", max_retries=0, timeout=20)


def test_the_simulator_lists_a_responses_input_items(simulator: BackgroundServer) -> None:
    client = _client(simulator)
    made = client.responses.create(model="gpt-4o-mini", input=[
        {"role": "user", "content": "first"},
        {"type": "message", "role": "assistant", "content": "second"},
        {"role": "user", "content": [{"type": "input_text", "text": "third"}]}])
    page = client.responses.input_items.list(made.id)
    texts = [item.content[0].text for item in page.data]  # type: ignore[union-attr]
    assert texts == ["third", "second", "first"]  # newest first, as OpenAI lists them
    assert len({item.id for item in page.data}) == 3 and not page.has_more
    asc = client.responses.input_items.list(made.id, order="asc", limit=2)
    assert [item.content[0].text for item in asc.data] == ["first", "second"]  # type: ignore[union-attr]
    assert asc.has_more
    rest = client.responses.input_items.list(made.id, order="asc", after=asc.data[-1].id)
    assert [item.content[0].text for item in rest.data] == ["third"]  # type: ignore[union-attr]
    one = client.responses.input_items.list(client.responses.create(model="gpt-4o-mini", input="hi").id)
    assert one.data[0].type == "message" and one.data[0].role == "user"  # type: ignore[union-attr]
    assert one.data[0].content[0].type == "input_text"  # type: ignore[union-attr]


@pytest.mark.parametrize(("query", "param"), [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
                                               ({"order": "up"}, "order"), ({"after": "msg_nope"}, "after")])
def test_bad_list_parameters_are_a_400_naming_them(simulator: BackgroundServer, query: dict[str, str],
                                                   param: str) -> None:
    made = _client(simulator).responses.create(model="gpt-4o-mini", input="hi")
    got = httpx.get(f"{simulator.url}/v1/responses/{made.id}/input_items", params=query,
                    headers={"authorization": "Bearer sk-sim"})
    assert got.status_code == 400 and got.json()["error"]["param"] == param


def test_an_unknown_response_has_no_input_items(simulator: BackgroundServer) -> None:
    with pytest.raises(openai.NotFoundError):
        _client(simulator).responses.input_items.list("resp_unknown")


def test_the_sdk_reads_input_items_through_the_gateway(make_gateway: Callable[..., Harness]) -> None:
    harness = make_gateway()
    client = harness.openai(harness.key(team="a"))
    made = client.responses.create(model="gpt-4o-mini", input="through the gateway", max_output_tokens=32)
    page = client.responses.input_items.list(made.id)
    assert [item.content[0].text for item in page.data] == ["through the gateway"]  # type: ignore[union-attr]
