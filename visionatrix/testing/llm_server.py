"""A real HTTP server on loopback that speaks three LLM providers' wire protocols, for tests.

* Ollama: ``POST /api/generate``, ``POST /api/chat``, ``GET /api/tags``
* Google Gemini REST: ``POST /v1beta/models/{model}:generateContent``, ``GET /v1beta/models``
* OpenAI-compatible: ``POST /v1/chat/completions``, ``GET /v1/models``

Each request is checked against the shape the provider documents (required fields and their
types, base64 images that decode to the declared format, known safety categories, the key in
the right header); a bad one gets that provider's own 4xx error body. Answers are
deterministic: an exact match in ``answers`` (keyed by the user's text), else ``answer`` (a
callable), else an echo naming the model, the images and the text. ``faults`` makes the next
requests fail with a status, and ``delay`` holds every answer back (timeouts). A request whose
target is an absolute URL arrived through this server acting as an HTTP proxy: it is recorded
with ``via_proxy`` and served the same way.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

from visionatrix.testing.llm_protocols import (
    BadRequest,
    check_chat,
    check_gemini,
    check_generate,
    check_openai,
)
from visionatrix.testing.loopback import Loopback

OLLAMA_MODELS = ("gemma3:12b-it-qat", "llava:13b", "qwen2.5vl:7b")
GEMINI_MODELS = ("gemini-2.0-flash-001", "gemini-2.0-flash-lite-001", "gemini-2.5-flash", "gemma-3-12b-it")
OPENAI_MODELS = ("local-model", "local-vision")


@dataclass
class Seen:
    """One request as the server understood it."""

    provider: str  # ollama | gemini | openai
    path: str
    headers: dict[str, str]
    body: Any
    via_proxy: bool = False
    model: str = ""
    system: str = ""
    text: str = ""
    images: list[tuple[str, tuple[int, int]]] = field(default_factory=list)  # (format, size)


@dataclass
class Fault:
    status: int
    retry_after: str | None = None


@dataclass
class LLMServer:
    gemini_key: str = "test-gemini-key"
    openai_key: str = "test-openai-key"
    ollama_models: tuple[str, ...] = OLLAMA_MODELS
    gemini_models: tuple[str, ...] = GEMINI_MODELS
    openai_models: tuple[str, ...] = OPENAI_MODELS
    answers: dict[str, str] = field(default_factory=dict)
    answer: Callable[[Seen], str] | None = None
    delay: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._loopback = Loopback(_handler_for(self))

    @property
    def url(self) -> str:
        return self._loopback.url

    def fail_next(self, times: int, status: int, retry_after: str | None = None) -> None:
        self.faults.extend(Fault(status, retry_after) for _ in range(times))

    def reset(self) -> None:
        """Forget what was seen; no canned answers, faults or delay."""
        self.seen.clear()
        self.faults.clear()
        self.answers.clear()
        self.answer = None
        self.delay = 0.0

    def reply_for(self, seen: Seen) -> str:
        if seen.text in self.answers:
            return self.answers[seen.text]
        if self.answer is not None:
            return self.answer(seen)
        return echo(seen)

    def __enter__(self) -> LLMServer:
        self._loopback.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loopback.stop()

    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.pop(0) if self.faults else None


def echo(seen: Seen) -> str:
    """The default answer: the model, each image's format and size, then the user's text."""
    images = "".join(f" [{fmt} {w}x{h}]" for fmt, (w, h) in seen.images)
    return f"{seen.model}{images}: {seen.text}"


def decode_image(data: Any, where: str) -> tuple[str, tuple[int, int]]:
    """(format, size) of a base64 image; ``BadRequest`` naming ``where`` when it is not one."""
    if not isinstance(data, str):
        raise BadRequest(f"{where} must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            return (image.format or "").lower(), image.size
    except (binascii.Error, UnidentifiedImageError, OSError) as exc:
        raise BadRequest(f"{where} is not a base64-encoded image") from exc


def _handler_for(server: LLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._serve(None)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"null")
            except json.JSONDecodeError:
                self._send(400, {"error": "invalid JSON body"})
                return
            self._serve(body)

        def _serve(self, body: Any) -> None:
            via_proxy = self.path.startswith("http://")
            path = urlsplit(self.path).path if via_proxy else self.path.split("?", 1)[0]
            provider, handle = _route(self.command, path)
            seen = Seen(provider, path, {k.lower(): v for k, v in self.headers.items()}, body, via_proxy)
            server.seen.append(seen)
            # decided on arrival: a request still held by ``delay`` when a later test queues
            # faults must not take them
            fault = server._take_fault()
            if server.delay:
                time.sleep(server.delay)
            if fault is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._send(fault.status, _error_body(provider, fault.status, "injected failure"), headers)
                return
            if handle is None:
                self._send(404, _error_body(provider, 404, f"no route {self.command} {path}"))
                return
            try:
                status, answer = handle(server, seen)
            except BadRequest as exc:
                status, answer = exc.status, _error_body(provider, exc.status, exc.message)
            self._send(status, answer)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


Handle = Callable[[LLMServer, Seen], tuple[int, Any]]


def _route(method: str, path: str) -> tuple[str, Handle | None]:
    if path.startswith("/api/"):
        routes: dict[tuple[str, str], Handle] = {
            ("POST", "/api/generate"): _ollama_generate,
            ("POST", "/api/chat"): _ollama_chat,
            ("GET", "/api/tags"): _ollama_tags,
        }
        return "ollama", routes.get((method, path))
    if path.startswith("/v1beta/"):
        if method == "POST" and path.endswith(":generateContent"):
            return "gemini", _gemini_generate
        return "gemini", _gemini_models if (method, path) == ("GET", "/v1beta/models") else None
    routes = {("POST", "/v1/chat/completions"): _openai_chat, ("GET", "/v1/models"): _openai_models}
    return "openai", routes.get((method, path))


def _error_body(provider: str, status: int, message: str) -> Any:
    if provider == "ollama":
        return {"error": message}
    if provider == "gemini":
        names = {
            400: "INVALID_ARGUMENT",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
        }
        return {"error": {"code": status, "message": message, "status": names.get(status, "UNAVAILABLE")}}
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


def _ollama_model(server: LLMServer, seen: Seen) -> None:
    if seen.model not in server.ollama_models:
        raise BadRequest(f'model "{seen.model}" not found, try pulling it first', 404)


def _ollama_generate(server: LLMServer, seen: Seen) -> tuple[int, Any]:
    check_generate(seen)
    _ollama_model(server, seen)
    seen.images = [decode_image(img, f"images[{i}]") for i, img in enumerate(seen.body.get("images") or [])]
    text = server.reply_for(seen)
    context = list(seen.body.get("context") or []) + [len(seen.text), len(text)]
    return 200, {
        "model": seen.model,
        "created_at": "2025-01-01T00:00:00.000000000Z",
        "response": text,
        "done": True,
        "done_reason": "stop",
        "context": context,
        "eval_count": len(text.split()),
    }


def _ollama_chat(server: LLMServer, seen: Seen) -> tuple[int, Any]:
    check_chat(seen)
    _ollama_model(server, seen)
    user = seen.body["messages"][-1]
    seen.images = [decode_image(img, f"images[{i}]") for i, img in enumerate(user.get("images") or [])]
    text = server.reply_for(seen)
    return 200, {
        "model": seen.model,
        "created_at": "2025-01-01T00:00:00.000000000Z",
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": "stop",
    }


def _ollama_tags(server: LLMServer, seen: Seen) -> tuple[int, Any]:
    models = [
        {
            "name": name,
            "model": name,
            "modified_at": f"2025-0{i + 1}-02T03:04:05.123456789+00:00",
            "size": 1_000_000 * (i + 1),
            "digest": f"{i:064x}",
            "details": {"format": "gguf", "family": name.split(":")[0]},
        }
        for i, name in enumerate(server.ollama_models)
    ]
    return 200, {"models": models}


def _gemini_generate(server: LLMServer, seen: Seen) -> tuple[int, Any]:
    if seen.headers.get("x-goog-api-key") != server.gemini_key:
        raise BadRequest("API key not valid. Please pass a valid API key.", 400)
    seen.model = seen.path.removeprefix("/v1beta/models/").removesuffix(":generateContent")
    if seen.model not in server.gemini_models:
        raise BadRequest(f"models/{seen.model} is not found for API version v1beta", 404)
    seen.images = check_gemini(seen, decode_image)
    text = server.reply_for(seen)
    return 200, {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": len(seen.text.split()), "totalTokenCount": 1},
        "modelVersion": seen.model,
    }


def _gemini_models(server: LLMServer, seen: Seen) -> tuple[int, Any]:
    if seen.headers.get("x-goog-api-key") != server.gemini_key:
        raise BadRequest("API key not valid. Please pass a valid API key.", 400)
    return 200, {
        "models": [
            {"name": f"models/{m}", "supportedGenerationMethods": ["generateContent", "countTokens"]}
            for m in server.gemini_models
        ]
    }


def _openai_auth(server: LLMServer, seen: Seen) -> None:
    if seen.headers.get("authorization") != f"Bearer {server.openai_key}":
        raise BadRequest("Incorrect API key provided", 401)


def _openai_chat(server: LLMServer, seen: Seen) -> tuple[int, Any]:
    _openai_auth(server, seen)
    seen.images = check_openai(seen, decode_image)
    if seen.model not in server.openai_models:
        raise BadRequest(f"The model `{seen.model}` does not exist", 404)
    text = server.reply_for(seen)
    return 200, {
        "id": f"chatcmpl-{len(server.seen)}",
        "object": "chat.completion",
        "created": 1735689600,
        "model": seen.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _openai_models(server: LLMServer, seen: Seen) -> tuple[int, Any]:
    _openai_auth(server, seen)
    data = [
        {"id": m, "object": "model", "created": 1735689600, "owned_by": "test"} for m in server.openai_models
    ]
    return 200, {"object": "list", "data": data}
