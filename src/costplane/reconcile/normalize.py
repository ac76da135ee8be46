"""Names on a bill and names in the ledger, brought to one spelling before they are compared.

Model names (both sides, the same rule):

1. lower-case, surrounding blanks removed;
2. a routing prefix dropped: `openai/`, `anthropic/`, `google/`, `models/`, and Bedrock's
   `anthropic.` / `us.anthropic.` style prefixes with their `-v1:0` version suffix;
3. a release-date suffix dropped: `-2024-08-06`, `-20250929`, `@20240620`; and `-latest`;
4. then `reconcile.models` (bill name -> ledger name, after steps 1-3) is applied.

So `gpt-4o-2024-08-06` and `gpt-4o` compare equal, and so do `claude-sonnet-4-5-20250929` and
`claude-sonnet-4-5`. Two dated releases of one model fold into one line on both sides alike.

Provider names: the company on a bill ("OpenAI", "Amazon Web Services", "Microsoft") and the provider
a ledger event names (a `providers:` key of costplane.yaml, or the `gen_ai.provider.name` of a span)
both map to one short key: openai, anthropic, aws, azure, gcp, … A ledger provider is first mapped
through `reconcile.providers`, then through the type of the costplane.yaml provider of that name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["canonical_provider", "normalize_model"]

_PREFIX = re.compile(r"^(?:openai|anthropic|google|models|vertex_ai|bedrock)/")
_BEDROCK = re.compile(r"^(?:[a-z]{2}\.)?(?:anthropic|amazon|meta|mistral|cohere)\.(?P<name>.+?)(?:-v\d+(?::\d+)?)?$")
_DATE = re.compile(r"(?:[-@]\d{4}-\d{2}-\d{2}|[-@]\d{8}|-latest)$")

_PROVIDERS: Mapping[str, str] = {
    "openai": "openai", "openai, llc": "openai", "openai llc": "openai", "azure openai": "azure",
    "anthropic": "anthropic", "anthropic pbc": "anthropic", "anthropic, pbc": "anthropic",
    "amazon web services": "aws", "aws": "aws", "amazon": "aws", "aws.bedrock": "aws", "bedrock": "aws",
    "microsoft": "azure", "microsoft azure": "azure", "azure": "azure", "az.ai.inference": "azure",
    "google cloud": "gcp", "google cloud platform": "gcp", "google": "gcp", "gcp": "gcp", "gcp.vertex_ai": "gcp",
    "gcp.gemini": "gcp", "gemini": "gcp", "vertex_ai": "gcp",
}


def normalize_model(name: str, aliases: Mapping[str, str] | None = None) -> str:
    """The comparable spelling of a model name (see the module docstring)."""
    text = name.strip().lower()
    text = _PREFIX.sub("", text)
    bedrock = _BEDROCK.match(text)
    if bedrock is not None:
        text = bedrock.group("name")
    previous = None
    while previous != text:  # "-20240620-latest" style stacks
        previous, text = text, _DATE.sub("", text)
    if aliases:
        text = aliases.get(text, text)
    return text


def canonical_provider(name: str, mapping: Mapping[str, str] | None = None) -> str:
    """The short provider key of a bill's company name or a ledger provider name; unknown names are
    kept (lower-cased) so that a custom provider still matches itself."""
    text = name.strip()
    if mapping and text in mapping:
        text = mapping[text]
    lowered = text.lower()
    return _PROVIDERS.get(lowered, lowered)
