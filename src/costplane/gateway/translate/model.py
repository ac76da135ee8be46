"""The vendor-neutral shape of one chat call, which the cross-vendor translators read and write.

A route may send a request to a model served by another protocol (OpenAI Chat, OpenAI Responses,
Anthropic Messages, Google Gemini). Each protocol's codec reads its own request into a `Chat`, writes
a `Chat` as its own request, reads its own response into a `Reply` and writes a `Reply` back — and
does the same for stream events. Only what every one of the four protocols can express is carried:
text, system instructions, images, tool definitions, tool calls and tool results, the output cap,
temperature, top_p and stop sequences. A request using anything else is `Untranslatable`, naming the
field, so it is refused instead of being silently changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Chat",
    "Finish",
    "Image",
    "Part",
    "Reply",
    "ReplyUsage",
    "Start",
    "StreamEvent",
    "Text",
    "TextDelta",
    "Tool",
    "ToolArgs",
    "ToolCall",
    "ToolResult",
    "ToolStart",
    "Turn",
    "Untranslatable",
    "UsageUpdate",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
Role = Literal["user", "assistant"]


class Untranslatable(ValueError):
    """The request (or reply) uses something the other protocol cannot express."""

    def __init__(self, field_path: str, why: str) -> None:
        super().__init__(f"{field_path}: {why}")
        self.field_path = field_path


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Image:
    """An image by URL, or inline as base64 `data` with its media type."""

    url: str | None = None
    media_type: str | None = None
    data: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text of the arguments object


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    content: str
    name: str | None = None  # the called tool's name (Gemini addresses results by name)
    is_error: bool = False


Part = Text | Image | ToolCall | ToolResult


@dataclass(frozen=True, slots=True)
class Turn:
    """`sources`: for each part, the field of the client's request it was read from (`messages[1].content[0]`),
    so an error found while writing it in another protocol names the client's own field."""

    role: Role
    parts: tuple[Part, ...]
    sources: tuple[str, ...] = ()

    def source(self, index: int, fallback: str) -> str:
        return self.sources[index] if index < len(self.sources) and self.sources[index] else fallback


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str | None
    parameters: dict[str, Any]  # JSON Schema of the arguments


@dataclass(frozen=True, slots=True)
class Chat:
    model: str
    turns: tuple[Turn, ...]
    system: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None  # auto | none | required | tool:<name>
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    user: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyUsage:
    input_tokens: int = 0  # every input token, cached ones included
    output_tokens: int = 0  # every output token, reasoning included
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Reply:
    id: str
    model: str
    parts: tuple[Text | ToolCall, ...]
    finish: FinishReason = "stop"
    usage: ReplyUsage = field(default_factory=ReplyUsage)


# -- stream events ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Start:
    id: str
    model: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolStart:
    index: int  # the position of the tool call among this reply's tool calls
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolArgs:
    index: int
    fragment: str  # a piece of the arguments' JSON text


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    usage: ReplyUsage


StreamEvent = Start | TextDelta | ToolStart | ToolArgs | Finish | UsageUpdate
