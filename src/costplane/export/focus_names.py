"""Company names and services of a cost event, as FOCUS names them.

FOCUS wants the companies in ProviderName / PublisherName / InvoiceIssuerName (1.2) and
ServiceProviderName / HostProviderName (1.3): "OpenAI", "Anthropic", "Google", "Amazon Web
Services", "Microsoft" — not the provider's key in costplane.yaml. The company is found,
first match wins, from:

1. ``providers.<key>.company`` in costplane.yaml (an explicit override);
2. the provider's ``pricing_provider`` or ``type`` (``openai``, ``anthropic``, ``aws``, …);
3. the event's provider key itself when it is a known provider id (OTLP events and the
   SDK record genai-prices ids such as ``openai`` or ``aws``; SKUs start with ``aws/``, ``gcp/``);
4. the model's vendor, read from the model name (``claude-…`` is Anthropic's, ``gpt-…`` OpenAI's);
5. the provider key as written (a self-hosted or unknown provider keeps its own name).

The publisher is the model's vendor when the name says it (Claude served by Bedrock is
published by Anthropic and provided by Amazon Web Services), else the provider.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["COMPANIES", "Companies", "company_of", "vendor_of"]

#: provider ids (genai-prices ids, provider types, SKU prefixes) -> company
COMPANIES: Mapping[str, str] = {
    "openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "gemini": "Google",
    "google-gla": "Google", "google-vertex": "Google Cloud", "vertex": "Google Cloud", "gcp": "Google Cloud",
    "aws": "Amazon Web Services", "bedrock": "Amazon Web Services", "azure": "Microsoft",
    "azure-openai": "Microsoft", "mistral": "Mistral AI", "groq": "Groq", "deepseek": "DeepSeek",
    "x-ai": "xAI", "xai": "xAI", "cohere": "Cohere", "together": "Together AI", "fireworks": "Fireworks AI",
    "perplexity": "Perplexity", "openrouter": "OpenRouter", "huggingface": "Hugging Face", "meta": "Meta",
    "novita": "Novita AI", "cerebras": "Cerebras",
}  # fmt: skip

#: model-name prefixes -> the company that publishes the model
_VENDORS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), c) for p, c in (
    (r"^(gpt-|o\d|chatgpt|text-embedding|text-moderation|omni-moderation|whisper|tts-|dall-e|gpt-image|"
     r"davinci|babbage|codex|computer-use)", "OpenAI"),
    (r"^claude", "Anthropic"),
    (r"^(gemini|gemma|text-bison|chat-bison|imagen|veo)", "Google"),
    (r"^(mistral|mixtral|codestral|pixtral|ministral|magistral|devstral|open-mistral)", "Mistral AI"),
    (r"^(llama|meta-llama)", "Meta"),
    (r"^(command|embed-(english|multilingual)|rerank)", "Cohere"),
    (r"^deepseek", "DeepSeek"),
    (r"^grok", "xAI"),
    (r"^(amazon\.|titan|nova)", "Amazon Web Services"),
))  # fmt: skip

#: hosting companies' names of their model API or compute service (ServiceName)
_SERVICES: Mapping[tuple[str, bool], str] = {
    ("OpenAI", False): "OpenAI API", ("Anthropic", False): "Claude API", ("Google", False): "Gemini API",
    ("Google Cloud", False): "Vertex AI", ("Amazon Web Services", False): "Amazon Bedrock",
    ("Microsoft", False): "Azure OpenAI", ("Amazon Web Services", True): "Amazon EC2",
    ("Google Cloud", True): "Compute Engine", ("Microsoft", True): "Azure Virtual Machines",
}  # fmt: skip


def vendor_of(model: str) -> str | None:
    """The company that publishes `model`, read from its name (None when the name does not say)."""
    name = model.lower().rsplit("/", 1)[-1]
    name = re.sub(r"^(us|eu|apac|global)\.", "", name)  # Bedrock cross-region inference prefixes
    head = name.split(".", 1)
    if len(head) == 2 and head[0] in COMPANIES and head[0] != "amazon":  # Bedrock ids: anthropic.claude-…
        return COMPANIES[head[0]]
    for pattern, company in _VENDORS:
        if pattern.match(name):
            return company
    return None


def company_of(provider: str, model: str = "", hints: Mapping[str, str] | None = None) -> str:
    """The company behind `provider` (a costplane.yaml key, genai-prices id or SKU prefix)."""
    if hints and provider in hints:
        return hints[provider]
    key = provider.lower()
    if key in COMPANIES:
        return COMPANIES[key]
    return vendor_of(model) or provider


@dataclass(frozen=True, slots=True)
class Companies:
    """How provider keys map to companies: overrides and provider ids from costplane.yaml."""

    #: provider key -> company, from ``providers.<key>.company`` or the provider's type / pricing id
    hints: Mapping[str, str]

    @classmethod
    def from_providers(cls, providers: Mapping[str, tuple[str | None, str, str | None]]) -> Companies:
        """`providers`: key -> (company override, type, pricing_provider) as in costplane.yaml."""
        hints: dict[str, str] = {}
        for key, (company, kind, pricing) in providers.items():
            known = COMPANIES.get((pricing or "").lower()) or COMPANIES.get(kind.lower())
            if company or known:
                hints[key] = company or known or key
        return cls(hints)

    def provider(self, provider: str, model: str) -> str:
        return company_of(provider, model, self.hints)

    def publisher(self, provider: str, model: str, compute: bool = False) -> str:
        if compute:
            return self.provider(provider, model)
        return vendor_of(model) or self.provider(provider, model)

    def service(self, provider: str, model: str, compute: bool) -> str:
        company = self.provider(provider, model)
        return _SERVICES.get((company, compute)) or (f"{company} compute" if compute else f"{company} API")
