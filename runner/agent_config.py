"""The `agents:` section of the server configuration: the model providers agent steps may use.

agents:
  providers:
    - { id: gpt, type: openai, api_key: { env: OPENAI_API_KEY }, model: gpt-4o-mini }
    - { id: claude, type: anthropic, api_key: { env: ANTHROPIC_API_KEY }, model: claude-sonnet-4-5 }
    - { id: local, type: ollama, model: llama3.2 }                      # http://localhost:11434/v1
    - { id: lab, type: openai, api_endpoint: http://vllm:8000/v1, model: qwen2.5 }

Every type speaks one of two wire formats: Anthropic's Messages API (the `anthropic` SDK), or OpenAI's chat
completions (the `openai` SDK), which every other listed service offers at its default endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .spec.problems import Problems
from .spec.reader import Reader
from .spec.yamlnodes import LocDict

__all__ = ["ENDPOINTS", "AgentProvider", "parse_agents"]

# type -> its OpenAI-compatible endpoint (None: the SDK's own default, or an endpoint the provider must give)
ENDPOINTS: dict[str, str | None] = {
    "openai": None,
    "azure": None,  # https://<resource>.openai.azure.com/openai/v1
    "ollama": "http://localhost:11434/v1",
    "vllm": "http://localhost:8000/v1",
    "llamafile": "http://localhost:8080/v1",
    "lmstudio": "http://localhost:1234/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "xai": "https://api.x.ai/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai/",
    "cohere": "https://api.cohere.ai/compatibility/v1",
    "perplexity": "https://api.perplexity.ai",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "cerebras": "https://api.cerebras.ai/v1",
    "anyscale": "https://api.endpoints.anyscale.com/v1",
}
_NEEDS_ENDPOINT = frozenset({"azure"})
_KEYLESS = frozenset({"ollama", "vllm", "llamafile", "lmstudio"})
TYPES = ("anthropic", *ENDPOINTS)


@dataclass(frozen=True)
class AgentProvider:
    id: str
    type: str
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_endpoint: str | None = None
    max_tokens: int = 4096
    temperature: float | None = None
    max_retries: int = 2

    @property
    def wire(self) -> str:
        """The SDK that speaks to it: anthropic or openai."""
        return "anthropic" if self.type == "anthropic" else "openai"

    @property
    def endpoint(self) -> str | None:
        return self.api_endpoint or ENDPOINTS.get(self.type)


def parse_agents(
    block: LocDict | None, problems: Problems, read_value: Callable[..., str | None]
) -> Mapping[str, AgentProvider]:
    if block is None:
        return {}
    r = Reader(block, problems, "agents")
    r.check_keys({"providers"})
    providers = block.get("providers")
    if providers is None:
        return {}
    if not isinstance(providers, list):
        r.error(
            "providers",
            "wrong-type",
            "agents.providers must be a list",
            "write `providers: [{ id: gpt, type: openai }]`",
        )
        return {}
    found: dict[str, AgentProvider] = {}
    for i, entry in enumerate(providers):
        if not isinstance(entry, LocDict):
            r.error(
                "providers", "wrong-type", f"agents.providers[{i}] must be a mapping like {{ id: gpt, type: openai }}"
            )
            continue
        provider = _provider(entry, problems, read_value, f"agents.providers[{i}]")
        if provider is None:
            continue
        if provider.id in found:
            problems.error(
                entry.at("id"), "duplicate", f"provider id {provider.id!r} is given twice", "use one id once"
            )
            continue
        found[provider.id] = provider
    return found


def _provider(
    entry: LocDict, problems: Problems, read_value: Callable[..., str | None], what: str
) -> AgentProvider | None:
    p = Reader(entry, problems, what)
    p.check_keys({"id", "type", "api_key", "api_endpoint", "model", "max_tokens", "temperature", "max_retries"})
    p.require("id", "add `id: <the name agent steps use as provider>`")
    p.require("type", f"add `type:` ({', '.join(TYPES)})")
    provider_id, kind = p.string("id"), p.choice("type", TYPES)
    if provider_id is None or kind is None:
        return None
    fields: dict[str, Any] = {"id": provider_id, "type": kind, "model": p.string("model")}
    if "api_key" in entry:
        fields["api_key"] = read_value(entry["api_key"], f"{what}.api_key", problems, entry.at("api_key"))
    elif kind not in _KEYLESS:
        p.error(
            None, "missing-field", f"provider {provider_id!r} needs `api_key`", "api_key: { env: PROVIDER_API_KEY }"
        )
    fields["api_endpoint"] = p.string("api_endpoint")
    if kind in _NEEDS_ENDPOINT and not fields["api_endpoint"]:
        p.error(
            None,
            "missing-field",
            f"a {kind} provider needs `api_endpoint`",
            "api_endpoint: https://NAME.openai.azure.com/openai/v1",
        )
    max_tokens = p.integer("max_tokens", 1, 1_000_000)
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    fields["temperature"] = p.number("temperature", 0, 2)
    retries = p.integer("max_retries", 0, 10)
    if retries is not None:
        fields["max_retries"] = retries
    return AgentProvider(**fields)
