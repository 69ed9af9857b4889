"""Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, LM Studio, OpenAI itself):
``POST {base}/chat/completions`` with a Bearer key; images as ``data:`` URLs in ``image_url`` parts."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from visionatrix.errors import ProviderError, ProviderNotConfigured
from visionatrix.llm.base import ModelInfo, Prompt, Reply
from visionatrix.llm.http import Transport

# Ollama-style option names that the chat completions API also knows, under its own names
_OPTION_NAMES = {"top_p": "top_p", "stop": "stop", "presence_penalty": "presence_penalty",
                 "frequency_penalty": "frequency_penalty"}  # fmt: skip


class OpenAICompatible:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        model: str = "",
        *,
        timeout: float,
        transport: Transport | None = None,
    ) -> None:
        if not base_url:
            raise ProviderNotConfigured(
                self.name, "no endpoint: set the openai_url setting (e.g. http://host:8000/v1)"
            )
        self.base_url = api_base(base_url)
        self.api_key = api_key
        self.model = model
        self.transport = transport or Transport(self.name, timeout=timeout)

    def ask(self, prompt: Prompt) -> Reply:
        model = prompt.model or self.model
        if not model:
            raise ProviderNotConfigured(self.name, "no model: set the openai_model setting")
        answer = self.transport.post(
            self.base_url + "/chat/completions", self._body(prompt, model), self._headers()
        )
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not choices or not isinstance(choices[0], dict):
            raise ProviderError(self.name, "the answer has no choices")
        message = choices[0].get("message") or {}
        return Reply(_content_text(message.get("content")), str(choices[0].get("finish_reason") or "stop"))

    def models(self) -> list[ModelInfo]:
        answer = self.transport.get(self.base_url + "/models", self._headers())
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise ProviderError(self.name, "the model list has no 'data'")
        return [
            ModelInfo(str(m["id"]), 0, float(m.get("created") or 0))
            for m in data
            if isinstance(m, dict) and "id" in m
        ]

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _body(self, prompt: Prompt, model: str) -> dict[str, Any]:
        content: str | list[dict[str, Any]] = prompt.text
        if prompt.images:
            content = [{"type": "text", "text": prompt.text}] + [
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:{p.mime};base64,{base64.b64encode(p.data).decode('ascii')}"},
                }
                for p in prompt.images
            ]
        messages = ([{"role": "system", "content": prompt.system}] if prompt.system else []) + [
            {"role": "user", "content": content}
        ]
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": False}
        for name, value in (("temperature", prompt.temperature), ("max_tokens", prompt.max_tokens),
                            ("seed", prompt.seed)):  # fmt: skip
            if value is not None:
                body[name] = value
        body.update(
            {_OPTION_NAMES[k]: v for k, v in prompt.options.items() if k in _OPTION_NAMES and v != ""}
        )
        if prompt.json:
            body["response_format"] = {"type": "json_object"}
        return body


def api_base(url: str) -> str:
    """The API base: ``http://host:port`` alone means ``http://host:port/v1``, as servers mount it."""
    url = url.rstrip("/")
    return url + "/v1" if urlsplit(url).path in ("", "/") else url


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise ProviderError("openai", "the answer's message has no content")
