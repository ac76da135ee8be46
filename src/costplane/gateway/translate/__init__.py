"""Routing across vendors: a chat request, its reply and its stream, from one protocol to another.

The gateway routes a request to a model served by another protocol when a policy or a budget's
`on_exceed` says so. It reads the client's request into the neutral `Chat` (`model.py`), writes it in
the served protocol, and translates the reply — plain or streamed — back, so the client always gets its
own protocol. One codec per protocol; `WIRES` names the protocols that can be translated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from costplane.gateway.translate import anthropic_messages, gemini, openai_chat, openai_responses
from costplane.gateway.translate.model import Chat, Reply, StreamEvent, Untranslatable

__all__ = ["WIRES", "StreamTranslator", "Untranslatable", "read_chat", "read_reply", "translate_reply", "write_chat"]


class _Reader(Protocol):
    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


class _Writer(Protocol):
    def feed(self, event: StreamEvent) -> bytes: ...

    def close(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Codec:
    read_reply: Callable[[Mapping[str, Any]], Reply]
    write_reply: Callable[[Reply, str], dict[str, Any]]
    reader: Callable[[], _Reader]
    writer: Callable[[str, bool], _Writer]  # (client's model, include usage)


_CODECS: dict[str, _Codec] = {
    "openai-chat": _Codec(openai_chat.read_reply, openai_chat.write_reply, openai_chat.ChatStreamReader,
                          openai_chat.ChatStreamWriter),
    "openai-responses": _Codec(openai_responses.read_reply, openai_responses.write_reply,
                               openai_responses.ResponsesStreamReader,
                               lambda model, _: openai_responses.ResponsesStreamWriter(model)),
    "anthropic-messages": _Codec(anthropic_messages.read_reply, anthropic_messages.write_reply,
                                 anthropic_messages.MessagesStreamReader,
                                 lambda model, _: anthropic_messages.MessagesStreamWriter(model)),
    "gemini": _Codec(gemini.read_reply, gemini.write_reply, gemini.GeminiStreamReader,
                     lambda model, _: gemini.GeminiStreamWriter(model)),
}

#: the protocols a chat request can be translated between
WIRES: tuple[str, ...] = tuple(_CODECS)


#: the field of each protocol's request that holds the conversation
_CONVERSATION = {"openai-chat": "messages", "openai-responses": "input", "anthropic-messages": "messages",
                 "gemini": "contents"}


def read_chat(wire: str, body: Mapping[str, Any], *, model: str, stream: bool) -> Chat:
    """The client's request body in `wire` as a neutral chat; `Untranslatable` names the field of the
    client's own request that another protocol could not carry — also for what is found only while
    writing it (each part remembers its field). (`model` and `stream`: where the protocol puts them in
    the path.)"""
    if wire == "openai-chat":
        chat = openai_chat.read_request(body)
    elif wire == "openai-responses":
        chat = openai_responses.read_request(body)
    elif wire == "anthropic-messages":
        chat = anthropic_messages.read_request(body)
    elif wire == "gemini":
        chat = gemini.read_request(body, model, stream)
    else:
        raise Untranslatable("model", f"requests in the {wire} protocol cannot be routed across vendors")
    if not chat.turns:
        raise Untranslatable(_CONVERSATION[wire], "no user or assistant message to route (every other protocol "
                                                  "requires at least one)")
    return chat


def write_chat(wire: str, chat: Chat, model: str, *, default_max_tokens: int) -> dict[str, Any]:
    """The neutral chat as a request body in `wire`, for `model` (Gemini puts the model in the path)."""
    if wire == "openai-chat":
        return openai_chat.write_request(chat, model)
    if wire == "openai-responses":
        return openai_responses.write_request(chat, model)
    if wire == "anthropic-messages":
        return anthropic_messages.write_request(chat, model, default_max_tokens)
    if wire == "gemini":
        return gemini.write_request(chat)
    raise Untranslatable("model", f"the {wire} protocol cannot serve a request routed from another vendor")


def translate_reply(served: str, payload: Mapping[str, Any], client: str, client_model: str) -> dict[str, Any]:
    """A plain reply of the served protocol, in the client's protocol, naming the client's model."""
    return _CODECS[client].write_reply(_CODECS[served].read_reply(payload), client_model)


def read_reply(wire: str, payload: Mapping[str, Any]) -> Reply:
    return _CODECS[wire].read_reply(payload)


class StreamTranslator:
    """Bytes of the served protocol's stream in, bytes of the client's protocol's stream out."""

    def __init__(self, served: str, client: str, client_model: str, *, include_usage: bool = False) -> None:
        self._reader = _CODECS[served].reader()
        self._writer = _CODECS[client].writer(client_model, include_usage)

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._writer.feed(event) for event in self._reader.feed(chunk))

    def close(self) -> bytes:
        """The rest, once the served stream ended (the client's closing events)."""
        tail = b"".join(self._writer.feed(event) for event in self._reader.close())
        return tail + self._writer.close()
