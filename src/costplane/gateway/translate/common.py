"""Pieces every codec shares: building alternating turns, reading images and JSON arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from costplane.gateway.translate.model import Image, Part, Role, ToolCall, ToolResult, Turn, Untranslatable

__all__ = ["TurnBuilder", "data_url", "image_from_url", "parse_arguments", "refuse_unknown", "text_of"]


class TurnBuilder:
    """Appends parts, merging consecutive parts of one role into one turn (every target protocol
    accepts alternating turns; some require them), and remembers each tool call's name by id and
    each part's field in the client's request (`where`)."""

    def __init__(self) -> None:
        self._turns: list[tuple[str, list[Part], list[str]]] = []
        self.call_names: dict[str, str] = {}
        self.count = 0  # parts added so far

    def add(self, role: Role, part: Part, where: str = "") -> None:
        if isinstance(part, ToolCall):
            self.call_names[part.id] = part.name
        if self._turns and self._turns[-1][0] == role:
            self._turns[-1][1].append(part)
            self._turns[-1][2].append(where)
        else:
            self._turns.append((role, [part], [where]))
        self.count += 1

    def result(self, call_id: str, content: str, is_error: bool = False, where: str = "") -> None:
        self.add("user", ToolResult(call_id, content, self.call_names.get(call_id), is_error), where)

    def require_content(self, since: int, where: str) -> None:
        """Refuse a client message that added no part since `since` (empty `content`): every other
        protocol requires a message to hold something, so it cannot be carried across."""
        if self.count == since:
            raise Untranslatable(where, "an empty message cannot be routed across vendors (the routed-to "
                                        "protocol requires every message to hold content)")

    def turns(self) -> tuple[Turn, ...]:
        return tuple(Turn("user" if role == "user" else "assistant", tuple(parts), tuple(sources))
                     for role, parts, sources in self._turns)


def image_from_url(url: str) -> Image:
    """An image part from a URL, inline when it is a base64 `data:` URL."""
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        return Image(media_type=head or "application/octet-stream", data=data)
    return Image(url=url)


def data_url(image: Image) -> str:
    if image.url is not None:
        return image.url
    return f"data:{image.media_type or 'application/octet-stream'};base64,{image.data or ''}"


def parse_arguments(text: str, where: str) -> dict[str, Any]:
    """A tool call's arguments as an object (the protocols that carry them as JSON objects)."""
    if not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise Untranslatable(where, f"tool call arguments are not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise Untranslatable(where, "tool call arguments must be a JSON object")
    return value


def text_of(content: Any, where: str, text_types: tuple[str, ...] = ("text",)) -> str:
    """A string, or a list of text parts joined: what system prompts and tool results may hold."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            if isinstance(part, Mapping) and part.get("type") in text_types and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise Untranslatable(f"{where}[{index}]", f"a {kind!s} part cannot be carried to another vendor here")
        return "\n".join(texts)
    raise Untranslatable(where, "expected a string or a list of text parts")


def refuse_unknown(body: Mapping[str, Any], carried: frozenset[str], where: str = "") -> None:
    """Refuse a request field whose meaning another vendor's protocol would lose."""
    for name, value in body.items():
        if name not in carried and value is not None:
            raise Untranslatable(f"{where}{name}", "this parameter has no equivalent in the routed-to model's "
                                                   "protocol; the request cannot be routed across vendors")
