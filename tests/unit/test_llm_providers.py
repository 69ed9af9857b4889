"""The three providers against a real loopback server speaking their wire protocols: request
shapes, answers, provider errors named, timeouts, bounded retries, the proxy."""

from __future__ import annotations

import io
import socket
from datetime import UTC, datetime

import pytest
from PIL import Image

from visionatrix.errors import ProviderError, ProviderNotConfigured, ProviderTimeout
from visionatrix.llm import (
    Gemini,
    LLMSettings,
    Ollama,
    OpenAICompatible,
    Picture,
    Prompt,
    keep_alive,
    provider,
)
from visionatrix.llm.http import Transport
from visionatrix.testing.llm_server import LLMServer


def _image(fmt: str, size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buffer.getvalue()


def test_ollama_chat_sends_system_text_and_images(llm: LLMServer) -> None:
    ollama = Ollama(llm.url, "llava:13b", keep_alive="5m", timeout=5)
    reply = ollama.ask(Prompt("what is it?", system="be brief", images=(Picture(_image("PNG")),), seed=7))
    assert reply.text == "llava:13b [png 8x6]: what is it?"
    assert reply.done_reason == "stop"
    (seen,) = llm.seen
    assert seen.path == "/api/chat" and seen.system == "be brief"
    assert seen.body["keep_alive"] == "5m" and seen.body["options"] == {"seed": 7}
    assert [m["role"] for m in seen.body["messages"]] == ["system", "user"]


def test_ollama_generate_carries_context_and_options(llm: LLMServer) -> None:
    ollama = Ollama(llm.url, "gemma3:12b-it-qat", timeout=5)
    prompt = Prompt("hi", json=True, temperature=0.0, max_tokens=64, options={"top_k": 5})
    reply = ollama.generate(prompt, context=[1, 2])
    (seen,) = llm.seen
    assert seen.path == "/api/generate"
    assert seen.body["format"] == "json" and seen.body["keep_alive"] == 0 and seen.body["context"] == [1, 2]
    assert seen.body["options"] == {"top_k": 5, "temperature": 0.0, "num_predict": 64}
    # the test server appends the prompt's and the answer's lengths to the context it was given
    assert reply.context == [1, 2, 2, len(reply.text)]


def test_ollama_models_read_from_tags(llm: LLMServer) -> None:
    models = Ollama(llm.url, timeout=5).models()
    assert [m.model for m in models] == list(llm.ollama_models)
    assert models[0].size == 1_000_000
    # nanoseconds in Ollama's timestamps are cut to microseconds
    assert models[0].modified_at == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC).timestamp()


def test_ollama_unknown_model_is_named(llm: LLMServer) -> None:
    with pytest.raises(ProviderError) as caught:
        Ollama(llm.url, "nope:1b", timeout=5).ask(Prompt("x"))
    assert caught.value.provider == "ollama"
    assert 'model "nope:1b" not found' in caught.value.message and "HTTP 404" in caught.value.message


def test_gemini_rest_request_shape(llm: LLMServer) -> None:
    gemini = Gemini(llm.gemini_key, "gemini-2.5-flash", base_url=llm.url, timeout=5)
    prompt = Prompt("describe", system="short", images=(Picture(_image("WEBP"), "image/webp"),), max_tokens=9)
    assert gemini.ask(prompt).text == "gemini-2.5-flash [webp 8x6]: describe"
    (seen,) = llm.seen
    assert seen.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert seen.headers["x-goog-api-key"] == llm.gemini_key and "key=" not in seen.path
    assert seen.system == "short"
    assert {s["category"] for s in seen.body["safetySettings"]} == {
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
    }
    assert seen.body["generationConfig"] == {"responseMimeType": "text/plain", "maxOutputTokens": 9}


def test_gemini_key_errors(llm: LLMServer) -> None:
    with pytest.raises(ProviderNotConfigured, match="google_api_key"):
        Gemini("", base_url=llm.url, timeout=5).ask(Prompt("x"))
    with pytest.raises(ProviderError, match=r"API key not valid.*HTTP 400") as caught:
        Gemini("wrong", base_url=llm.url, timeout=5).ask(Prompt("x"))
    assert "wrong" not in caught.value.message


def test_gemini_goes_through_the_proxy(llm: LLMServer) -> None:
    # the endpoint's host does not exist: only the proxy can have answered
    gemini = Gemini(llm.gemini_key, base_url="http://gemini.invalid:9", proxy=llm.url, timeout=5)
    assert gemini.ask(Prompt("via proxy")).text.endswith("via proxy")
    (seen,) = llm.seen
    assert seen.via_proxy and seen.provider == "gemini" and seen.text == "via proxy"


def test_gemini_model_list(llm: LLMServer) -> None:
    names = [m.model for m in Gemini(llm.gemini_key, base_url=llm.url, timeout=5).models()]
    assert names == list(llm.gemini_models)


def test_openai_compatible_chat(llm: LLMServer) -> None:
    openai = OpenAICompatible(llm.url, llm.openai_key, "local-vision", timeout=5)
    reply = openai.ask(Prompt("look", system="sys", images=(Picture(_image("PNG")),), json=True, seed=3))
    assert reply.text == "local-vision [png 8x6]: look"
    (seen,) = llm.seen
    assert seen.path == "/v1/chat/completions" and seen.system == "sys"
    assert seen.body["response_format"] == {"type": "json_object"} and seen.body["seed"] == 3
    assert seen.headers["authorization"] == f"Bearer {llm.openai_key}"
    assert [m.model for m in openai.models()] == list(llm.openai_models)


def test_openai_compatible_errors(llm: LLMServer) -> None:
    with pytest.raises(ProviderError, match=r"Incorrect API key provided.*HTTP 401"):
        OpenAICompatible(llm.url + "/v1", "bad", "local-model", timeout=5).ask(Prompt("x"))
    with pytest.raises(ProviderNotConfigured, match="openai_model"):
        OpenAICompatible(llm.url, llm.openai_key, timeout=5).ask(Prompt("x"))
    with pytest.raises(ProviderNotConfigured, match="openai_url"):
        OpenAICompatible("", timeout=5)


def test_overload_is_retried_then_answered(llm: LLMServer) -> None:
    llm.fail_next(2, 503)
    transport = Transport("ollama", timeout=5, backoff=0.01)
    assert Ollama(llm.url, timeout=5, transport=transport).ask(Prompt("again")).text.endswith("again")
    assert len(llm.seen) == 3


def test_retries_are_bounded_and_name_the_error(llm: LLMServer) -> None:
    llm.fail_next(5, 429, retry_after="0")
    transport = Transport("gemini", timeout=5, attempts=3)
    with pytest.raises(ProviderError, match=r"injected failure \(RESOURCE_EXHAUSTED\) \(HTTP 429"):
        Gemini(llm.gemini_key, base_url=llm.url, timeout=5, transport=transport).ask(Prompt("x"))
    assert len(llm.seen) == 3


def test_client_errors_are_not_retried(llm: LLMServer) -> None:
    llm.fail_next(1, 500)
    with pytest.raises(ProviderError, match="HTTP 500"):
        Ollama(llm.url, timeout=5).ask(Prompt("x"))
    assert len(llm.seen) == 1


def test_a_slow_provider_times_out_without_retry(llm: LLMServer) -> None:
    llm.delay = 2.0
    with pytest.raises(ProviderTimeout, match=r"no answer from http://127\.0\.0\.1:\d+ within 0\.3 s"):
        Ollama(llm.url, timeout=0.3).ask(Prompt("x"))
    assert len(llm.seen) == 1


def test_an_unreachable_provider_is_named_after_bounded_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        transport = Transport("ollama", timeout=2, backoff=0.01)
        with pytest.raises(ProviderError, match=rf"cannot reach http://127\.0\.0\.1:{port}: ConnectError"):
            Ollama(f"http://127.0.0.1:{port}", timeout=2, transport=transport).ask(Prompt("x"))


def test_provider_factory(llm: LLMServer) -> None:
    settings = LLMSettings(
        ollama_url=llm.url, ollama_llm_model="gemma3:12b-it-qat", ollama_vision_model="llava:13b"
    )
    assert provider("ollama", settings).ask(Prompt("a")).text.startswith("gemma3:12b-it-qat:")
    assert provider("ollama", settings, vision=True).ask(Prompt("a")).text.startswith("llava:13b:")
    with pytest.raises(ProviderNotConfigured, match="translations_provider"):
        provider("", settings, setting="translations_provider")
    with pytest.raises(ProviderNotConfigured, match="unknown provider"):
        provider("claude", settings)
    assert keep_alive("") == 0 and keep_alive("10") == "10m"
    assert "secret" not in repr(LLMSettings(google_api_key="secret", openai_api_key="secret"))
