"""Prompt translation and the LLM nodes through a real server and its local worker, against a real
loopback server speaking Ollama's, Gemini's and the OpenAI-compatible wire protocols."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support import FIXTURES, Server, png_bytes, wait_for
from visionatrix.llm.prompts import TRANSLATION_INSTRUCTIONS
from visionatrix.testing.llm_server import LLMServer, Seen, echo

ASK_AI = FIXTURES / "vixflows" / "flows" / "ask_ai_internal.json"
needs_fixtures = pytest.mark.skipif(not ASK_AI.is_file(), reason=f"fixture flows not found at {ASK_AI}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, llm_server: LLMServer) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("llm")
    vix = Server(workdir, f"sqlite:///{workdir / 'vix.db'}")
    vix.start()
    try:
        for flow in (translate_flow(), nodes_flow()):
            vix.install(flow)
        yield vix
    finally:
        vix.stop()


@pytest.fixture
def http(server: Server, llm: LLMServer) -> Iterator[httpx.Client]:
    with server.client(timeout=60) as client:
        settings(
            client,
            translations_provider="ollama",
            llm_provider="ollama",
            ollama_url=llm.url,
            ollama_llm_model="gemma3:12b-it-qat",
            ollama_vision_model="llava:13b",
            ollama_keepalive="10",
            google_api_key=llm.gemini_key,
            gemini_url=llm.url,
            gemini_model="gemini-2.5-flash",
            google_proxy="",
            openai_url=llm.url,
            openai_api_key=llm.openai_key,
            openai_model="local-model",
            openai_vision_model="local-vision",
            llm_timeout="",
            llm_nodes_provider="",
        )
        yield client


def settings(http: httpx.Client, **values: str) -> None:
    for key, value in values.items():
        response = http.post("/vapi/settings/global", json={"key": key, "value": value, "sensitive": False})
        assert response.status_code == 204, response.text


def _meta(name: str, translations: bool = False) -> dict[str, Any]:
    return {
        "class_type": "VixUiWorkflowMetadata",
        "inputs": {"name": name, "display_name": name, "is_seed_supported": True, "is_count_supported": True,
                   "is_translations_supported": translations, "tags": "[]", "requires": "[]", "version": "1"},
        "_meta": {"title": "VixUI-WorkflowMetadata"},
    }  # fmt: skip


def _prompt(custom_id: str, translatable: bool, order: int) -> dict[str, Any]:
    return {
        "class_type": "VixUiPrompt",
        "inputs": {"text": "", "display_name": custom_id, "optional": order > 1, "advanced": False,
                   "order": order, "custom_id": custom_id, "hidden": False, "translatable": translatable},
        "_meta": {"title": "VixUI-Prompt"},
    }  # fmt: skip


def translate_flow() -> dict[str, Any]:
    """prompt (translatable) and note (not) → joined → SaveText (node 9)."""
    return {
        "1": _meta("llm_translate", translations=True),
        "2": _prompt("prompt", True, 1),
        "3": _prompt("note", False, 2),
        "4": {
            "class_type": "StringConcatenate",
            "inputs": {"string_a": ["2", 0], "string_b": ["3", 0], "delimiter": " | "},
        },  # fmt: skip
        "9": {
            "class_type": "SaveText|pysssss",
            "inputs": {
                "root_dir": "output",
                "file": "file.txt",
                "append": "append",
                "insert": True,
                "text": ["4", 0],
            },
        },  # fmt: skip
    }


def nodes_flow() -> dict[str, Any]:
    """image → OllamaVision → OllamaGenerate (thinking filtered) → Ask_Gemini (with the image) → SaveText."""
    return {
        "1": _meta("llm_nodes"),
        "2": _prompt("prompt", False, 1),
        "3": {"class_type": "LoadImage", "inputs": {"image": ""},
              "_meta": {"title": "input;Photo;custom_id=photo"}},
        "4": {"class_type": "OllamaVision", "inputs": {"images": ["3", 0], "query": ["2", 0],
              "debug": "enable", "url": "http://127.0.0.1:9", "model": "gemma3:12b-it-qat", "keep_alive": 0,
              "format": "text", "seed": 1}},
        "5": {"class_type": "OllamaGenerate", "inputs": {"prompt": ["4", 0], "debug": "disable",
              "url": "http://127.0.0.1:9", "model": "nope", "keep_alive": 3, "format": "text",
              "filter_thinking": True}},
        "6": {"class_type": "Ask_Gemini", "inputs": {"prompt": ["5", 0], "safety_settings": "BLOCK_ONLY_HIGH",
              "response_type": "text", "model": "gemini-2.0-flash-lite-001", "api_key": "", "proxy": "",
              "system_instruction": "be terse", "error_fallback_value": "", "seed": 1, "temperature": -0.05,
              "num_predict": 0, "image_1": ["3", 0]}},
        "9": {"class_type": "SaveText|pysssss", "inputs": {"root_dir": "output", "file": "file.txt",
              "append": "overwrite", "insert": True, "text": ["6", 0]}},
    }  # fmt: skip


def run(http: httpx.Client, flow: str, data: dict[str, str], files: Any = None) -> tuple[dict[str, Any], str]:
    created = http.put(f"/vapi/tasks/create/{flow}", data=data, files=files)
    assert created.status_code == 200, created.text
    task = wait_for(created.json()["tasks_ids"][0], http, timeout=60)
    if task["error"]:
        return task, ""
    node = task["outputs"][0]["comfy_node_id"]
    result = http.get("/vapi/tasks/results", params={"task_id": task["task_id"], "node_id": node})
    assert result.status_code == 200 and result.headers["content-type"].startswith("text/plain")
    return task, result.content.decode("utf-8")


# ---- settings and routes ------------------------------------------------------------------------


def test_secrets_are_write_only(http: httpx.Client, llm: LLMServer) -> None:
    assert http.get("/vapi/settings/get", params={"key": "google_api_key"}).json() == ""
    assert http.get("/vapi/settings/get", params={"key": "openai_api_key"}).json() == ""
    assert (
        http.post("/vapi/settings/user", json={"key": "openai_api_key", "value": "mine"}).status_code == 204
    )
    assert http.get("/vapi/settings/get", params={"key": "openai_api_key"}).json() == ""
    assert http.get("/vapi/settings/get", params={"key": "ollama_url"}).json() == llm.url
    # the stored key still works: the server uses it
    settings(http, translations_provider="gemini")
    http.post("/vapi/settings/user", json={"key": "openai_api_key", "value": ""})
    answer = http.post("/vapi/other/translate-prompt", json={"prompt": "Bonjour"})
    assert answer.status_code == 200, answer.text
    assert llm.seen[-1].headers["x-goog-api-key"] == llm.gemini_key


def test_translate_prompt_route_with_each_provider(http: httpx.Client, llm: LLMServer) -> None:
    llm.answers["Привет, мир"] = "<think>hmm</think>Hello, world"
    for name, path in (
        ("ollama", "/api/chat"),
        ("gemini", ":generateContent"),
        ("openai", "/v1/chat/completions"),
    ):
        settings(http, translations_provider=name)
        answer = http.post("/vapi/other/translate-prompt", json={"prompt": "Привет, мир"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"prompt": "Привет, мир", "result": "Hello, world", "done_reason": "stop"}
        seen = llm.seen[-1]
        assert seen.provider == name and seen.path.endswith(path) and seen.system == TRANSLATION_INSTRUCTIONS
    own = http.post("/vapi/other/translate-prompt", json={"prompt": "Hallo", "system_prompt": "to French"})
    assert own.json()["result"] == "local-model: Hallo" and llm.seen[-1].system == "to French"


def test_translate_prompt_route_errors(http: httpx.Client, llm: LLMServer) -> None:
    settings(http, translations_provider="")
    answer = http.post("/vapi/other/translate-prompt", json={"prompt": "Hallo"})
    assert answer.status_code == 412 and "translations_provider" in answer.json()["detail"]
    settings(http, translations_provider="ollama", ollama_llm_model="missing:7b")
    answer = http.post("/vapi/other/translate-prompt", json={"prompt": "Hallo"})
    assert answer.status_code == 502
    assert answer.json()["detail"].startswith(
        'ollama: model "missing:7b" not found, try pulling it first (HTTP 404'
    )
    settings(http, translations_provider="gemini", google_api_key="wrong")
    answer = http.post("/vapi/other/translate-prompt", json={"prompt": "Hallo"})
    assert answer.status_code == 502 and "gemini: API key not valid" in answer.json()["detail"]
    settings(http, translations_provider="ollama", ollama_llm_model="gemma3:12b-it-qat", llm_timeout="0.5")
    llm.delay = 3.0
    answer = http.post("/vapi/other/translate-prompt", json={"prompt": "Hallo"})
    assert answer.status_code == 504 and "within 0.5 s" in answer.json()["detail"]


def test_ollama_models_route(http: httpx.Client, llm: LLMServer) -> None:
    models = http.get("/vapi/settings/ollama/models")
    assert models.status_code == 200, models.text
    assert [m["model"] for m in models.json()] == list(llm.ollama_models)
    assert models.json()[1]["size"] == 2_000_000 and models.json()[1]["modified_at"] > 1.7e9
    settings(http, ollama_url="http://127.0.0.1:9")
    failed = http.get("/vapi/settings/ollama/models")
    assert failed.status_code == 404 and failed.json()["detail"].startswith(
        "Error fetching Ollama models: ollama:"
    )


# ---- translation at task creation ---------------------------------------------------------------


def test_translation_at_creation(http: httpx.Client, llm: LLMServer) -> None:
    llm.answers["Кот в шляпе"] = "A cat in a hat"
    task, text = run(
        http, "llm_translate", {"prompt": "Кот в шляпе", "note": "Без перевода", "translate": "1"}
    )
    assert task["input_params"]["prompt"] == "Кот в шляпе" and task["input_params"]["note"] == "Без перевода"
    assert task["translated_input_params"] == {"prompt": "A cat in a hat"}
    assert text == "A cat in a hat | Без перевода"  # the translation went into the graph
    assert [s.text for s in llm.seen] == ["Кот в шляпе"]  # the untranslatable input was not sent


def test_english_and_unflagged_prompts_are_not_sent(http: httpx.Client, llm: LLMServer) -> None:
    task, text = run(http, "llm_translate", {"prompt": "A cat in a hat, 4k", "translate": "1"})
    assert task["translated_input_params"] is None and text == "A cat in a hat, 4k | "
    task, text = run(http, "llm_translate", {"prompt": "Кот", "translate": "0"})
    assert task["translated_input_params"] is None and text == "Кот | "
    # a flow without is_translations_supported ignores the flag
    task, _text = run(http, "llm_nodes", {"prompt": "Кот", "translate": "1"}, _photo((8, 8)))
    assert task["translated_input_params"] is None and task["error"] == ""
    assert llm.seen[0].text == "Кот" and not any(s.path == "/api/chat" for s in llm.seen)
    llm.seen.clear()
    settings(http, translations_provider="")  # translation switched off: the flag is ignored
    task, _text = run(http, "llm_translate", {"prompt": "Кот", "translate": "1"})
    assert task["translated_input_params"] is None and llm.seen == []


def test_provider_failure_at_creation_is_named_and_creates_nothing(
    http: httpx.Client, llm: LLMServer
) -> None:
    before = http.get("/vapi/tasks/progress", params={"name": "llm_translate"}).json()
    llm.fail_next(3, 503)
    failed = http.put("/vapi/tasks/create/llm_translate", data={"prompt": "Кот", "translate": "1"})
    assert failed.status_code == 502 and failed.json()["detail"].startswith(
        "ollama: injected failure (HTTP 503"
    )
    assert len(llm.seen) == 3  # bounded retries, then the error
    settings(http, translations_provider="openai", openai_model="")
    failed = http.put("/vapi/tasks/create/llm_translate", data={"prompt": "Кот", "translate": "1"})
    assert failed.status_code == 412 and "openai_model" in failed.json()["detail"]
    assert http.get("/vapi/tasks/progress", params={"name": "llm_translate"}).json() == before


def test_retried_overload_still_translates(http: httpx.Client, llm: LLMServer) -> None:
    llm.fail_next(1, 503)
    llm.answers["Собака"] = "Dog"
    task, text = run(http, "llm_translate", {"prompt": "Собака", "translate": "1"})
    assert task["translated_input_params"] == {"prompt": "Dog"} and text == "Dog | "


def test_surprise_me_gives_each_task_its_own_prompt(http: httpx.Client, llm: LLMServer) -> None:
    llm.answer = lambda seen: json.dumps(["a red fox, watercolor", "a lighthouse, oil painting"])
    created = http.put(
        "/vapi/tasks/create/llm_translate", data={"prompt": "autumn", "surprise_me": "1", "count": "2"}
    )
    assert created.status_code == 200, created.text
    tasks = [wait_for(t, http) for t in created.json()["tasks_ids"]]
    assert [t["input_params"]["prompt"] for t in tasks] == [
        "a red fox, watercolor",
        "a lighthouse, oil painting",
    ]
    (seen,) = llm.seen[:1]
    assert seen.body["format"] == "json" and "autumn" in seen.text
    flows = {f["name"]: f for f in http.get("/vapi/flows/installed").json()}
    assert flows["llm_translate"]["is_surprise_me_supported"] is True


# ---- the LLM nodes in the worker ----------------------------------------------------------------


def _photo(size: tuple[int, int]) -> dict[str, Any]:
    return {"photo": ("p.png", png_bytes((200, 100, 50), size), "image/png")}


def test_llm_nodes_run_in_the_worker(http: httpx.Client, llm: LLMServer) -> None:
    def answer(seen: Seen) -> str:
        # the text-only generate call answers with its thoughts first, as reasoning models do
        if seen.path == "/api/generate" and not seen.images:
            return f"<think>plan</think>styled: {seen.text}"
        return echo(seen)

    llm.answer = answer
    task, text = run(http, "llm_nodes", {"prompt": "what is this?"}, _photo((40, 30)))
    assert task["error"] == ""
    vision, generate, gemini = llm.seen
    # OllamaVision: settings replace the node's url, model and keep-alive; the image goes as PNG
    assert (
        vision.path == "/api/generate"
        and vision.model == "llava:13b"
        and vision.images == [("png", (40, 30))]
    )
    assert vision.body["keep_alive"] == "10m" and "system" not in vision.body and "options" not in vision.body
    # OllamaGenerate: the LLM model setting, thinking filtered before the next node reads it
    assert generate.model == "gemma3:12b-it-qat" and generate.text == "llava:13b [png 40x30]: what is this?"
    # Ask_Gemini: the gemini_model setting, lossless WebP, the node's safety threshold and system
    assert gemini.provider == "gemini" and gemini.model == "gemini-2.5-flash"
    assert gemini.images == [("webp", (40, 30))] and gemini.system == "be terse"
    assert {s["threshold"] for s in gemini.body["safetySettings"]} == {"BLOCK_ONLY_HIGH"}
    assert gemini.body["generationConfig"] == {"responseMimeType": "text/plain"}
    assert gemini.text == "styled: llava:13b [png 40x30]: what is this?"
    assert text == f"gemini-2.5-flash [webp 40x30]: {gemini.text}"


def test_llm_nodes_can_all_go_to_an_openai_compatible_server(http: httpx.Client, llm: LLMServer) -> None:
    settings(http, llm_nodes_provider="openai")
    task, text = run(http, "llm_nodes", {"prompt": "what?"}, _photo((16, 12)))
    assert task["error"] == ""
    assert [(s.provider, s.model, s.images) for s in llm.seen] == [
        ("openai", "local-vision", [("png", (16, 12))]),
        ("openai", "local-model", []),
        ("openai", "local-vision", [("webp", (16, 12))]),
    ]
    assert text.startswith("local-vision [webp 16x12]: local-model: local-vision [png 16x12]: what?")


def test_a_failing_provider_fails_the_task_naming_node_and_provider(
    http: httpx.Client, llm: LLMServer
) -> None:
    settings(http, gemini_model="gemini-9-ultra")
    task, _text = run(http, "llm_nodes", {"prompt": "x"}, _photo((8, 8)))
    assert task["error"].startswith("node 6 (Ask_Gemini): gemini: models/gemini-9-ultra is not found")
    settings(http, gemini_model="gemini-2.5-flash", google_api_key="")
    task, _text = run(http, "llm_nodes", {"prompt": "x"}, _photo((8, 8)))
    assert task["error"] == (
        "node 6 (Ask_Gemini): gemini: no API key: "
        "set the google_api_key setting (or GOOGLE_API_KEY on the worker)"
    )


@needs_fixtures
def test_ask_ai_internal_from_the_fixture_file(http: httpx.Client, server: Server, llm: LLMServer) -> None:
    installed = server.install(ASK_AI)
    assert installed["name"] == "ask_ai_internal"
    files = {
        "image_1": ("a.png", png_bytes((255, 0, 0), (32, 24)), "image/png"),
        "image_2": ("b.png", png_bytes((0, 0, 255), (32, 24)), "image/png"),
    }
    data = {"prompt": "Compare these", "system_prompt": "You are precise.", "seed": "5", "temperature": "0.2"}
    task, text = run(http, "ask_ai_internal", data, files)
    assert task["error"] == ""
    (seen,) = llm.seen
    assert (
        seen.path == "/api/generate"
        and seen.model == "gemma3:12b-it-qat"
        and seen.system == "You are precise."
    )
    assert seen.body["options"] == {"temperature": 0.2, "seed": 5, "num_predict": 4096}
    assert seen.body["keep_alive"] == "10m" and seen.images == [("png", (32, 24)), ("png", (32, 24))]
    assert text == "gemma3:12b-it-qat [png 32x24] [png 32x24]: Compare these"

    llm.seen.clear()
    task, text = run(http, "ask_ai_internal", {**data, "use_gemini": "1"}, {"image_1": files["image_1"]})
    assert task["error"] == ""
    (seen,) = llm.seen
    assert (
        seen.provider == "gemini" and seen.model == "gemini-2.5-flash" and seen.images == [("webp", (32, 24))]
    )
    assert seen.body["generationConfig"] == {
        "responseMimeType": "text/plain",
        "temperature": 0.2,
        "maxOutputTokens": 4096,
    }
    assert text == "gemini-2.5-flash [webp 32x24]: Compare these"


def test_images_reach_the_provider_as_the_pack_encodes_them(http: httpx.Client, llm: LLMServer) -> None:
    color = (12, 200, 77)
    photo = io.BytesIO()
    Image.new("RGB", (5, 4), color).save(photo, "PNG")
    run(http, "llm_nodes", {"prompt": "p"}, {"photo": ("p.png", photo.getvalue(), "image/png")})
    # LoadImage gives float32 v / 255; the packs send uint8(clip(255 * x)), truncating
    expected = tuple(int(np.uint8(np.float32(255.0) * (np.float32(v) / np.float32(255.0)))) for v in color)
    for seen, key in ((llm.seen[0], "images"), (llm.seen[2], "contents")):
        data = (
            seen.body["images"][0]
            if key == "images"
            else seen.body["contents"][0]["parts"][1]["inlineData"]["data"]
        )
        assert Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB").getpixel((2, 2)) == expected


def test_nodes_retry_an_overloaded_provider_and_time_out_a_silent_one(
    http: httpx.Client, llm: LLMServer
) -> None:
    llm.fail_next(2, 503)
    task, _text = run(http, "llm_nodes", {"prompt": "x"}, _photo((8, 8)))
    assert task["error"] == "" and len(llm.seen) == 5  # two refused, then the three nodes' requests
    settings(http, llm_timeout="0.5")
    llm.delay = 3.0
    task, _text = run(http, "llm_nodes", {"prompt": "x"}, _photo((8, 8)))
    assert task["error"].startswith("node 4 (OllamaVision): ollama: no answer from http://127.0.0.1:")
    assert task["error"].endswith("within 0.5 s (llm_timeout)")
