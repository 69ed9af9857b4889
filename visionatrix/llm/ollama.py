"""Ollama over its HTTP API: ``/api/chat`` (``ask``), ``/api/generate`` (what the comfyui-ollama
nodes call, with ``context``), ``/api/tags`` (installed models). Images go as base64 strings."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from visionatrix.errors import ProviderError
from visionatrix.llm.base import ModelInfo, Prompt, Reply
from visionatrix.llm.http import Transport
from visionatrix.llm.settings import DEFAULT_OLLAMA_MODEL, DEFAULT_OLLAMA_URL


class Ollama:
    name = "ollama"

    def __init__(
        self,
        url: str = "",
        model: str = "",
        *,
        keep_alive: str | int = 0,
        timeout: float,
        transport: Transport | None = None,
    ) -> None:
        self.url = (url or DEFAULT_OLLAMA_URL).rstrip("/")
        self.model = model or DEFAULT_OLLAMA_MODEL
        # a duration ("5m", "1h") or seconds; 0 unloads the model right after the answer
        self.keep_alive = keep_alive
        self.transport = transport or Transport(self.name, timeout=timeout)

    def ask(self, prompt: Prompt) -> Reply:
        """A one-turn chat: the system message, then the user's text with its images."""
        user: dict[str, Any] = {"role": "user", "content": prompt.text}
        if prompt.images:
            user["images"] = _images(prompt)
        messages = ([{"role": "system", "content": prompt.system}] if prompt.system else []) + [user]
        answer = self._post("/api/chat", {**self._common(prompt), "messages": messages})
        message = answer.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise ProviderError(self.name, "the chat answer has no message content")
        return Reply(message["content"], str(answer.get("done_reason") or "stop"))

    def generate(self, prompt: Prompt, context: list[int] | None = None) -> Reply:
        """A completion as ``/api/generate`` makes it: system, prompt, images, context, options."""
        body = {**self._common(prompt), "prompt": prompt.text}
        if prompt.system:
            body["system"] = prompt.system
        if prompt.images:
            body["images"] = _images(prompt)
        if context:
            body["context"] = list(context)
        answer = self._post("/api/generate", body)
        if not isinstance(answer.get("response"), str):
            raise ProviderError(self.name, "the generate answer has no 'response' text")
        context_out = answer.get("context")
        return Reply(
            answer["response"],
            str(answer.get("done_reason") or "stop"),
            context_out if isinstance(context_out, list) else None,
        )

    def models(self) -> list[ModelInfo]:
        answer = self.transport.get(self.url + "/api/tags")
        models = answer.get("models") if isinstance(answer, dict) else None
        if not isinstance(models, list):
            raise ProviderError(self.name, "the model list has no 'models'")
        return [
            ModelInfo(
                model=str(m.get("model") or m.get("name") or "unknown"),
                size=int(m.get("size") or 0),
                modified_at=_timestamp(m.get("modified_at")),
            )
            for m in models
            if isinstance(m, dict)
        ]

    def _common(self, prompt: Prompt) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": prompt.model or self.model,
            "stream": False,
            "keep_alive": self.keep_alive,
        }
        if prompt.json:
            body["format"] = "json"
        options = dict(prompt.options)
        for name, value in (
            ("temperature", prompt.temperature),
            ("num_predict", prompt.max_tokens),
            ("seed", prompt.seed),
        ):
            if value is not None:
                options[name] = value
        if options:
            body["options"] = options
        return body

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.transport.post(self.url + path, body)
        if not isinstance(answer, dict):
            raise ProviderError(self.name, f"{path} answered with something that is not a JSON object")
        return answer


def _images(prompt: Prompt) -> list[str]:
    return [base64.b64encode(p.data).decode("ascii") for p in prompt.images]


def _timestamp(value: Any) -> float:
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        # Ollama writes RFC 3339 with nanoseconds; Python reads at most microseconds
        head, dot, tail = value.partition(".")
        if dot:
            digits = "".join(c for c in tail if c.isdigit())
            value = f"{head}.{digits[:6]}{tail[len(digits) :]}"
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
