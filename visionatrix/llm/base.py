"""What every provider takes and gives: a ``Prompt`` in, a ``Reply`` out, behind ``Provider``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# reasoning models wrap their thoughts in these tags; the answer is what follows
_THINKING = re.compile(r"<(?:think|thinking)>.*?</(?:think|thinking)>\s*", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Picture:
    """An encoded image sent along with a prompt."""

    data: bytes
    mime: str = "image/png"


@dataclass(frozen=True)
class Prompt:
    """One request: instructions (``system``), the user's text, optional images and sampling knobs."""

    text: str
    system: str = ""
    images: tuple[Picture, ...] = ()
    json: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    # provider-specific sampling options (Ollama's ``options`` names: top_k, mirostat...)
    options: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""  # "" = the provider's configured model


@dataclass(frozen=True)
class Reply:
    text: str
    done_reason: str = "stop"
    context: list[int] | None = None  # Ollama's conversation context, when it sends one


@dataclass(frozen=True)
class ModelInfo:
    """A model a provider offers (the shape of Visionatrix's Ollama model list)."""

    model: str
    size: int = 0
    modified_at: float = 0.0


class Provider(Protocol):
    name: str

    def ask(self, prompt: Prompt) -> Reply:
        """One answer to ``prompt``; raises ``ProviderError`` (or a subclass) naming the failure."""
        ...

    def models(self) -> list[ModelInfo]:
        """The models the provider offers."""
        ...


def strip_thinking(text: str) -> str:
    """``text`` without ``<think>...</think>`` blocks, stripped."""
    return _THINKING.sub("", text).strip()
