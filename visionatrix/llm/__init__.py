"""LLM providers behind one small interface: Ollama, Google Gemini, any OpenAI-compatible endpoint.

Torch-free and server-free (httpx and the error tree only): the server translates prompts with it,
the worker's LLM nodes run with it. ``provider(name, settings)`` builds one from ``LLMSettings``.
"""

from __future__ import annotations

from visionatrix.errors import ProviderNotConfigured
from visionatrix.llm.base import ModelInfo, Picture, Prompt, Provider, Reply, strip_thinking
from visionatrix.llm.gemini import Gemini
from visionatrix.llm.ollama import Ollama
from visionatrix.llm.openai_compat import OpenAICompatible
from visionatrix.llm.settings import PROVIDERS, SECRET_KEYS, LLMSettings

__all__ = [
    "PROVIDERS",
    "SECRET_KEYS",
    "Gemini",
    "LLMSettings",
    "ModelInfo",
    "Ollama",
    "OpenAICompatible",
    "Picture",
    "Prompt",
    "Provider",
    "Reply",
    "keep_alive",
    "provider",
    "strip_thinking",
]


def provider(name: str, settings: LLMSettings, *, vision: bool = False, setting: str = "") -> Provider:
    """The provider ``name`` configured by ``settings``; ``vision`` picks the vision model where
    there is one. ``setting`` names the setting that chose ``name``, for the error message."""
    if name == "ollama":
        model = settings.ollama_vision_model if vision else ""
        return Ollama(
            settings.ollama_url,
            model or settings.ollama_llm_model,
            keep_alive=keep_alive(settings.ollama_keepalive),
            timeout=settings.timeout,
        )
    if name == "gemini":
        return Gemini(
            settings.google_api_key,
            settings.gemini_model,
            base_url=settings.gemini_url,
            proxy=settings.google_proxy,
            timeout=settings.timeout,
        )
    if name == "openai":
        model = settings.openai_vision_model if vision else ""
        return OpenAICompatible(
            settings.openai_url,
            settings.openai_api_key,
            model or settings.openai_model,
            timeout=settings.timeout,
        )
    where = f" (setting {setting})" if setting else ""
    if not name:
        raise ProviderNotConfigured("llm", f"no provider chosen{where}: use one of {', '.join(PROVIDERS)}")
    raise ProviderNotConfigured(name, f"unknown provider{where}: use one of {', '.join(PROVIDERS)}")


def keep_alive(minutes: str) -> str | int:
    """Visionatrix's ``ollama_keepalive`` (minutes) as Ollama's ``keep_alive``: "" unloads at once."""
    minutes = minutes.strip()
    return f"{minutes}m" if minutes else 0
