"""The gateway's own span of a call carries the call's ids: `gen_ai.response.id` (the provider's
id) and, when the client sent a `traceparent`, the client's trace id with the client's span as
its parent — so a tracing backend shows the gateway's span under the span that made the call."""

from __future__ import annotations

from pathlib import Path

import openai

from costplane.gateway.keys import create_key
from costplane.server import create_server
from costplane.serving import BackgroundServer

from .test_span_export import Collector, _application, collector  # noqa: F401 - fixture

TRACE, PARENT = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def test_gateway_span_has_response_id_and_the_clients_span_as_parent(
        tmp_path: Path, simulator: BackgroundServer, collector: Collector) -> None:  # noqa: F811
    application = _application(tmp_path, simulator.url, "ids", {"otlp_endpoint": collector.url,
                                                                 "export_interval": 0.05})
    key, _ = create_key(application.store, "test", {"team": "ml"})
    with BackgroundServer(create_server(application)) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
        traced = client.chat.completions.create(model="gpt-4o-mini", max_tokens=20, messages=[
            {"role": "user", "content": "Where is parcel 7?"}],
            extra_headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
        plain = client.chat.completions.create(model="gpt-4o-mini", max_tokens=20, messages=[
            {"role": "user", "content": "Where is parcel 8?"}])
    spans = {attrs["gen_ai.response.id"]: span for _, attrs, span in collector.spans()}
    assert set(spans) == {traced.id, plain.id}
    assert (spans[traced.id].trace_id.hex(), spans[traced.id].parent_span_id.hex()) == (TRACE, PARENT)
    assert spans[plain.id].parent_span_id == b""  # no traceparent: a root span
    application.close()
