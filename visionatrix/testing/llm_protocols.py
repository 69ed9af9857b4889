"""Request checks for the test LLM server: what each provider documents a request must look like.

* Ollama (docs/api.md): ``model`` and ``prompt``/``messages``, ``stream: false`` for one JSON
  answer (Ollama streams otherwise), ``images`` as base64 strings, ``options`` with Ollama's
  option names, ``keep_alive`` a duration string or a number, ``format`` "json" or a schema.
* Gemini (REST ``generateContent``): ``contents[].parts[]`` each one ``text`` or ``inlineData``
  ``{mimeType, data}``, ``systemInstruction.parts``, ``safetySettings`` with known categories and
  thresholds, ``generationConfig`` with known fields. The API takes camelCase and snake_case.
* OpenAI chat completions: ``model``, ``messages`` whose content is a string or parts
  (``text`` / ``image_url`` with a ``data:`` URL), numeric sampling fields, ``response_format``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

OLLAMA_OPTIONS = frozenset(
    "num_keep seed num_predict top_k top_p min_p typical_p repeat_last_n temperature repeat_penalty "
    "presence_penalty frequency_penalty mirostat mirostat_tau mirostat_eta penalize_newline stop numa "
    "num_ctx num_batch num_gpu main_gpu low_vram vocab_only use_mmap use_mlock num_thread tfs_z".split()
)
_DURATION = re.compile(r"^-?\d+(\.\d+)?(ns|us|µs|ms|s|m|h)?$")
GEMINI_CATEGORIES = frozenset(
    {"HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_SEXUALLY_EXPLICIT",
     "HARM_CATEGORY_DANGEROUS_CONTENT", "HARM_CATEGORY_CIVIC_INTEGRITY"}
)  # fmt: skip
GEMINI_THRESHOLDS = frozenset(
    {"BLOCK_NONE", "BLOCK_ONLY_HIGH", "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_LOW_AND_ABOVE", "OFF"}
)
GEMINI_CONFIG = frozenset(
    {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "responseMimeType",
     "responseSchema", "seed", "presencePenalty", "frequencyPenalty", "thinkingConfig"}
)  # fmt: skip
GEMINI_IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}

Decode = Callable[[Any, str], tuple[str, tuple[int, int]]]


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequest(message)


def _ollama_common(body: Any) -> None:
    _require(isinstance(body, dict), "request body must be a JSON object")
    _require(isinstance(body.get("model"), str) and body["model"], "model is required")
    _require(body.get("stream") is False, "send stream: false for a single JSON answer")
    keep_alive = body.get("keep_alive", "5m")
    _require(
        isinstance(keep_alive, int | float)
        or (isinstance(keep_alive, str) and bool(_DURATION.match(keep_alive))),
        f"keep_alive {keep_alive!r} is not a duration",
    )
    _require(body.get("format", "") in ("", "json") or isinstance(body.get("format"), dict), "bad format")
    options = body.get("options", {})
    _require(isinstance(options, dict), "options must be an object")
    unknown = sorted(set(options) - OLLAMA_OPTIONS)
    _require(not unknown, f"invalid options: {', '.join(unknown)}")


def check_generate(seen: Any) -> None:
    body = seen.body
    _ollama_common(body)
    _require(isinstance(body.get("prompt"), str), "prompt must be a string")
    _require(isinstance(body.get("system", ""), str), "system must be a string")
    _require(isinstance(body.get("images", []), list), "images must be a list of base64 strings")
    context = body.get("context", [])
    _require(isinstance(context, list) and all(isinstance(t, int) for t in context), "context must be ints")
    seen.model, seen.system, seen.text = body["model"], body.get("system", ""), body["prompt"]


def check_chat(seen: Any) -> None:
    body = seen.body
    _ollama_common(body)
    messages = body.get("messages")
    _require(isinstance(messages, list) and bool(messages), "messages must be a non-empty list")
    for n, message in enumerate(messages):
        _require(isinstance(message, dict), f"messages[{n}] must be an object")
        _require(message.get("role") in ("system", "user", "assistant", "tool"), f"messages[{n}]: bad role")
        _require(isinstance(message.get("content"), str), f"messages[{n}]: content must be a string")
        _require(isinstance(message.get("images", []), list), f"messages[{n}]: images must be a list")
    _require(messages[-1]["role"] == "user", "the last message must be the user's")
    seen.model = body["model"]
    seen.system = next((m["content"] for m in messages if m["role"] == "system"), "")
    seen.text = messages[-1]["content"]


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def check_gemini(seen: Any, decode: Decode) -> list[tuple[str, tuple[int, int]]]:
    body = seen.body
    _require(isinstance(body, dict), "request body must be a JSON object")
    contents = body.get("contents")
    _require(isinstance(contents, list) and bool(contents), "contents must be a non-empty list")
    images: list[tuple[str, tuple[int, int]]] = []
    texts: list[str] = []
    for n, content in enumerate(contents):
        _require(
            isinstance(content, dict) and content.get("role", "user") in ("user", "model"), f"contents[{n}]"
        )
        parts = content.get("parts")
        _require(isinstance(parts, list) and bool(parts), f"contents[{n}].parts must be a non-empty list")
        for m, part in enumerate(parts):
            where = f"contents[{n}].parts[{m}]"
            inline = _get(part, "inlineData", "inline_data") if isinstance(part, dict) else None
            if isinstance(part, dict) and isinstance(part.get("text"), str) and inline is None:
                texts.append(part["text"])
                continue
            _require(isinstance(inline, dict), f"{where} must hold text or inlineData")
            mime = _get(inline, "mimeType", "mime_type")
            _require(mime in GEMINI_IMAGE_TYPES, f"{where}: unsupported mimeType {mime!r}")
            fmt, size = decode(inline.get("data"), f"{where}.inlineData.data")
            _require(fmt == GEMINI_IMAGE_TYPES[mime], f"{where}: data is {fmt}, mimeType says {mime}")
            images.append((fmt, size))
    _check_gemini_options(body)
    system = _get(body, "systemInstruction", "system_instruction")
    if system is not None:
        _require(
            isinstance(system, dict) and isinstance(system.get("parts"), list), "systemInstruction.parts"
        )
        seen.system = "".join(p.get("text", "") for p in system["parts"])
    seen.text = "\n".join(texts)
    return images


def _check_gemini_options(body: dict[str, Any]) -> None:
    for n, setting in enumerate(_get(body, "safetySettings", "safety_settings") or []):
        _require(setting.get("category") in GEMINI_CATEGORIES, f"safetySettings[{n}]: unknown category")
        _require(setting.get("threshold") in GEMINI_THRESHOLDS, f"safetySettings[{n}]: unknown threshold")
    config = _get(body, "generationConfig", "generation_config") or {}
    _require(isinstance(config, dict), "generationConfig must be an object")
    unknown = sorted(set(config) - GEMINI_CONFIG)
    _require(not unknown, f"Invalid JSON payload received. Unknown name {unknown} at 'generation_config'")
    mime = config.get("responseMimeType", "text/plain")
    _require(mime in ("text/plain", "application/json", "text/x.enum"), f"responseMimeType {mime!r}")
    temperature = config.get("temperature", 1.0)
    _require(isinstance(temperature, int | float) and 0 <= temperature <= 2, "temperature must be in [0, 2]")
    tokens = config.get("maxOutputTokens", 1)
    _require(isinstance(tokens, int) and tokens > 0, "maxOutputTokens must be a positive integer")


def check_openai(seen: Any, decode: Decode) -> list[tuple[str, tuple[int, int]]]:
    body = seen.body
    _require(isinstance(body, dict), "request body must be a JSON object")
    _require(isinstance(body.get("model"), str) and body["model"], "you must provide a model parameter")
    _require(body.get("stream", False) is False, "this server answers stream: false only")
    messages = body.get("messages")
    _require(isinstance(messages, list) and bool(messages), "messages must be a non-empty array")
    images: list[tuple[str, tuple[int, int]]] = []
    texts: list[str] = []
    for n, message in enumerate(messages):
        _require(message.get("role") in ("system", "user", "assistant", "developer"), f"messages[{n}].role")
        content = message.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        else:
            _require(isinstance(content, list), f"messages[{n}].content must be a string or an array")
            parts = content
        for part in parts:
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                if message["role"] == "user":
                    texts.append(part["text"])
                elif message["role"] == "system":
                    seen.system = part["text"]
                continue
            _require(
                part.get("type") == "image_url", f"messages[{n}]: unknown content part {part.get('type')!r}"
            )
            url = (part.get("image_url") or {}).get("url", "")
            match = re.match(r"^data:(image/(?:png|jpeg|webp|gif));base64,(.*)$", url, re.DOTALL)
            _require(match is not None, f"messages[{n}]: image_url.url must be a data: URL")
            assert match is not None
            fmt, size = decode(match.group(2), f"messages[{n}].image_url")
            _require(
                f"image/{fmt}" == match.group(1), f"messages[{n}]: data is {fmt}, URL says {match.group(1)}"
            )
            images.append((fmt, size))
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = body.get(name, low)
        _require(
            isinstance(value, int | float) and low <= value <= high, f"{name} must be in [{low}, {high}]"
        )
    _require(isinstance(body.get("max_tokens", 1), int) and body.get("max_tokens", 1) > 0, "max_tokens > 0")
    fmt = (body.get("response_format") or {"type": "text"}).get("type")
    _require(fmt in ("text", "json_object", "json_schema"), f"response_format.type {fmt!r}")
    seen.model = body["model"]
    seen.text = "\n".join(texts)
    return images
