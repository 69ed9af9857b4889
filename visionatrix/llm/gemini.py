"""Google Gemini over its REST API: ``models/{model}:generateContent`` with the key in the
``x-goog-api-key`` header (never in the URL, so no message or log can show it)."""

from __future__ import annotations

import base64
from typing import Any

from visionatrix.errors import ProviderError, ProviderNotConfigured
from visionatrix.llm.base import ModelInfo, Prompt, Reply
from visionatrix.llm.http import Transport
from visionatrix.llm.settings import DEFAULT_GEMINI_MODEL

DEFAULT_URL = "https://generativelanguage.googleapis.com"
# one threshold for every category, as the Python SDK expands a single threshold
HARM_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
THRESHOLDS = ("BLOCK_NONE", "BLOCK_ONLY_HIGH", "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_LOW_AND_ABOVE")
_DONE = {"STOP": "stop", "MAX_TOKENS": "max_tokens"}


class Gemini:
    name = "gemini"

    def __init__(
        self,
        api_key: str,
        model: str = "",
        *,
        base_url: str = "",
        proxy: str = "",
        safety: str = "BLOCK_NONE",
        timeout: float,
        transport: Transport | None = None,
    ) -> None:
        self.api_key = api_key
        self.model = model or DEFAULT_GEMINI_MODEL
        self.base_url = (base_url or DEFAULT_URL).rstrip("/")
        if safety not in THRESHOLDS:
            raise ProviderNotConfigured(
                self.name, f"safety setting {safety!r} is not one of {list(THRESHOLDS)}"
            )
        self.safety = safety
        self.transport = transport or Transport(self.name, timeout=timeout, proxy=proxy)

    def ask(self, prompt: Prompt) -> Reply:
        model = (prompt.model or self.model).removeprefix("models/")
        answer = self.transport.post(
            f"{self.base_url}/v1beta/models/{model}:generateContent", self._body(prompt), self._headers()
        )
        if not isinstance(answer, dict):
            raise ProviderError(self.name, "generateContent answered with something that is not an object")
        return _reply(answer)

    def models(self) -> list[ModelInfo]:
        answer = self.transport.get(f"{self.base_url}/v1beta/models", self._headers())
        models = answer.get("models") if isinstance(answer, dict) else None
        if not isinstance(models, list):
            raise ProviderError(self.name, "the model list has no 'models'")
        return [
            ModelInfo(str(m.get("name", "")).removeprefix("models/"))
            for m in models
            if isinstance(m, dict) and "generateContent" in (m.get("supportedGenerationMethods") or [])
        ]

    def _headers(self) -> dict[str, str]:
        if not self.api_key:
            raise ProviderNotConfigured(
                self.name, "no API key: set the google_api_key setting (or GOOGLE_API_KEY on the worker)"
            )
        return {"x-goog-api-key": self.api_key}

    def _body(self, prompt: Prompt) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": prompt.text}]
        parts += [
            {"inlineData": {"mimeType": p.mime, "data": base64.b64encode(p.data).decode("ascii")}}
            for p in prompt.images
        ]
        config: dict[str, Any] = {"responseMimeType": "application/json" if prompt.json else "text/plain"}
        if prompt.temperature is not None:
            config["temperature"] = prompt.temperature
        if prompt.max_tokens is not None:
            config["maxOutputTokens"] = prompt.max_tokens
        if prompt.seed is not None:
            config["seed"] = prompt.seed
        body: dict[str, Any] = {
            "contents": [{"role": "user", "parts": parts}],
            "safetySettings": [{"category": c, "threshold": self.safety} for c in HARM_CATEGORIES],
            "generationConfig": config,
        }
        if prompt.system:
            body["systemInstruction"] = {"parts": [{"text": prompt.system}]}
        return body


def _reply(answer: dict[str, Any]) -> Reply:
    candidates = answer.get("candidates") or []
    if not candidates:
        blocked = (answer.get("promptFeedback") or {}).get("blockReason")
        reason = f"the prompt was blocked ({blocked})" if blocked else "the answer has no candidates"
        raise ProviderError("gemini", reason)
    first = candidates[0]
    finish = str(first.get("finishReason") or "STOP")
    parts = (first.get("content") or {}).get("parts") or []
    texts = [p["text"] for p in parts if isinstance(p, dict) and "text" in p and not p.get("thought")]
    if not texts:
        raise ProviderError("gemini", f"the answer has no text (finish reason {finish})")
    return Reply("\n".join(texts), _DONE.get(finish, finish.lower()))
