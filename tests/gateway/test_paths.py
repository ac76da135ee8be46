"""Every path answers in its protocol family's shape, and /v1/models lists what each family reaches."""

from __future__ import annotations

import httpx
import orjson

from .conftest import Harness


def test_models_per_protocol_family(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw: Harness = make_gateway()
    key = gw.key()
    azure = httpx.get(f"{gw.url}/v1/models?family=azure-openai", headers={"authorization": f"Bearer {key}"})
    assert azure.status_code == 200 and azure.json()["family"] == "azure-openai"
    assert {m["id"] for m in azure.json()["data"]} == {"prod-mini", "prod-4o", "embed-small"}
    claude = gw.anthropic(key).models.list()
    assert {m.id for m in claude.data} >= {"claude-haiku-4-5"} and all(m.id.startswith("claude") for m in claude.data)
    bad = httpx.get(f"{gw.url}/v1/models?family=cobol", headers={"authorization": f"Bearer {key}"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "family"
    assert httpx.get(f"{gw.url}/v1/models").status_code == 401


def test_unknown_paths_name_what_is_served_and_other_paths_stay_plain(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gw: Harness = make_gateway()
    key = gw.key()
    openai_shape = httpx.post(f"{gw.url}/v1/completions", headers={"authorization": f"Bearer {key}"}, json={})
    assert openai_shape.status_code == 404
    error = openai_shape.json()["error"]
    assert error["code"] == "unknown_path" and "POST /v1/chat/completions" in error["message"]
    assert "GET /v1/models" in error["message"]
    anthropic_shape = httpx.get(f"{gw.url}/v1/messages/batches", headers={"anthropic-version": "2023-06-01"})
    assert anthropic_shape.status_code == 404 and anthropic_shape.json()["type"] == "error"
    assert "POST /v1/messages" in anthropic_shape.json()["error"]["message"]
    wrong_method = httpx.get(f"{gw.url}/v1/chat/completions")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert orjson.loads(wrong_method.content)["error"]["code"] == "method_not_allowed"
    elsewhere = httpx.get(f"{gw.url}/nothing-here")
    assert elsewhere.status_code == 404 and elsewhere.text == "Not Found"


def test_gemini_clients_list_the_gemini_family_in_googles_shape(make_gateway) -> None:  # type: ignore[no-untyped-def]
    from google import genai

    gw: Harness = make_gateway()
    key = gw.key()
    listed = httpx.get(f"{gw.url}/v1beta/models?family=azure-openai", headers={"x-goog-api-key": key})
    assert listed.status_code == 200 and listed.json()["data"][0]["owned_by"] == "azure"
    plain = httpx.get(f"{gw.url}/v1beta/models", headers={"x-goog-api-key": key})
    names = {m["name"] for m in plain.json()["models"]}
    assert plain.status_code == 200 and names == {"models/gemini-2.0-flash", "models/gemini-2.5-flash"}
    client = genai.Client(api_key=key, http_options={"base_url": gw.url})
    assert {m.name for m in client.models.list()} == names
    assert httpx.get(f"{gw.url}/v1beta/models?key=cpk_wrong").status_code == 401
