"""The LLM settings: the Visionatrix setting keys, their defaults, and how they combine.

Values come from the server's settings (a user's own over the global ones) and, on a worker, from
environment variables named like the keys in upper case (``OLLAMA_URL``, ``GOOGLE_API_KEY``...),
which win over what the server sent, as on a Visionatrix worker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

PROVIDERS = ("ollama", "gemini", "openai")
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
DEFAULT_OLLAMA_MODEL = "gemma3:12b-it-qat"
DEFAULT_GEMINI_MODEL = "gemini-2.0-flash-001"
DEFAULT_TIMEOUT = 180.0
# never returned by the settings API, never logged
SECRET_KEYS = frozenset({"google_api_key", "openai_api_key"})
# where requests go: a user's own value serves only that user's own worker, never the server or
# an admin's worker (else any user could make them send requests anywhere and read the answer)
ENDPOINT_KEYS = frozenset({"ollama_url", "gemini_url", "openai_url", "google_proxy"})
# graph nodes that call a provider: a task with one of these gets the provider settings
NODE_CLASSES = frozenset(
    {"OllamaGenerate", "OllamaGenerateAdvance", "OllamaGenerateV2", "OllamaVision", "Ask_Gemini"}
)


@dataclass(frozen=True)
class LLMSettings:
    """Every LLM-related setting as a string, "" when unset (so a default applies)."""

    translations_provider: str = ""  # ollama | gemini | openai; "" = translation off
    llm_provider: str = ""  # the provider Surprise Me asks
    ollama_url: str = ""
    ollama_llm_model: str = ""
    ollama_vision_model: str = ""
    ollama_keepalive: str = ""  # minutes
    google_api_key: str = field(default="", repr=False)
    google_proxy: str = ""
    gemini_model: str = ""
    gemini_url: str = ""  # extension: another Gemini endpoint (a gateway, a test server)
    openai_url: str = ""  # an OpenAI-compatible API base, e.g. http://127.0.0.1:8000/v1
    openai_api_key: str = field(default="", repr=False)
    openai_model: str = ""
    openai_vision_model: str = ""
    llm_timeout: str = ""  # seconds one provider request may take
    llm_nodes_provider: str = ""  # "" = each LLM node asks its own provider; else this one for all

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> LLMSettings:
        """The known keys of ``values`` (others are ignored); None counts as unset."""
        known = set(cls.keys())
        return cls(**{k: str(v).strip() for k, v in values.items() if k in known and v is not None})

    def to_mapping(self) -> dict[str, str]:
        """The set values only (what a worker needs to receive)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v}

    def overridden_by(self, values: Mapping[str, object]) -> LLMSettings:
        """These settings with every non-empty value of ``values`` taking precedence."""
        return dataclasses.replace(self, **self.from_mapping(values).to_mapping())

    @property
    def timeout(self) -> float:
        try:
            value = float(self.llm_timeout)
        except ValueError:
            return DEFAULT_TIMEOUT
        return value if value > 0 else DEFAULT_TIMEOUT


def from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The LLM settings a worker's environment sets (``OLLAMA_URL`` for ``ollama_url``...)."""
    return {key: environ[key.upper()] for key in LLMSettings.keys() if environ.get(key.upper(), "").strip()}


def for_run(sent: Mapping[str, object] | None, environ: Mapping[str, str]) -> LLMSettings:
    """A worker's settings for one task: what the server sent with it, under the worker's own
    environment (a worker can keep its own Ollama, or a key the server never sees)."""
    return LLMSettings.from_mapping(sent or {}).overridden_by(from_environment(environ))
