"""The LLM and text nodes run directly against the loopback provider server, and the prompt helpers."""

from __future__ import annotations

import base64
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.nodes.llm import pictures
from visionatrix.engine.registry import lookup
from visionatrix.errors import InvalidInput, ProviderError
from visionatrix.llm import LLMSettings
from visionatrix.llm.prompts import is_english, surprise_prompts, surprise_request
from visionatrix.testing.llm_server import LLMServer


def context(tmp_path: Path, settings: LLMSettings) -> NodeContext:
    for name in ("input", "output", "tmp"):
        (tmp_path / name).mkdir(exist_ok=True)
    env = RunEnv(
        models=None,  # type: ignore[arg-type]
        input_dir=tmp_path / "input",
        output_dir=tmp_path / "output",
        tmp_dir=tmp_path / "tmp",
        options={"llm": settings},
    )
    return NodeContext(env, "7", "test")


def run(class_type: str, ctx: NodeContext, **inputs: Any) -> tuple[Any, ...]:
    cls = lookup(class_type)
    assert cls is not None, class_type
    return cls().run(ctx, **inputs)


def batch(*colors: tuple[int, int, int], size: tuple[int, int] = (6, 4)) -> np.ndarray:
    return np.stack([np.full((size[1], size[0], 3), np.float32(c) / 255, dtype=np.float32) for c in colors])


def test_generate_v2_sends_only_enabled_options_and_keeps_meta(tmp_path: Path, llm: LLMServer) -> None:
    ctx = context(tmp_path, LLMSettings())
    (link,) = run(
        "OllamaConnectivityV2", ctx, url=llm.url, model="llava:13b", keep_alive=2, keep_alive_unit="hours"
    )
    options = {"enable_temperature": True, "temperature": 0.5, "enable_top_k": False, "top_k": 9,
               "enable_stop": True, "stop": "END", "debug": False}  # fmt: skip
    (opts,) = run("OllamaOptionsV2", ctx, **options)
    llm.answers["q"] = "<thinking>x</thinking> answer"
    text, ctx_out, meta = run(
        "OllamaGenerateV2", ctx, system="sys", prompt="q", filter_thinking=False, keep_context=False,
        format="json", connectivity=link, options=opts, context="4, 5", images=batch((1, 2, 3), (4, 5, 6)),
    )  # fmt: skip
    assert text == "<thinking>x</thinking> answer"  # not filtered when the node says so
    (seen,) = llm.seen
    assert seen.body["options"] == {"temperature": 0.5, "stop": "END"}
    assert (
        seen.body["keep_alive"] == "2h" and seen.body["format"] == "json" and seen.body["context"] == [4, 5]
    )
    assert seen.images == [("png", (6, 4)), ("png", (6, 4))] and seen.system == "sys"
    assert ctx_out == [4, 5, 1, len(text)] and meta == {"connectivity": link, "options": opts}
    with pytest.raises(InvalidInput, match="connectivity"):
        run(
            "OllamaGenerateV2",
            ctx,
            system="",
            prompt="q",
            filter_thinking=True,
            keep_context=False,
            format="text",
        )


def test_settings_replace_the_connectivity_inputs(tmp_path: Path, llm: LLMServer) -> None:
    settings = LLMSettings(ollama_url=llm.url, ollama_llm_model="gemma3:12b-it-qat", ollama_keepalive="7")
    (link,) = run(
        "OllamaConnectivityV2", context(tmp_path, settings), url="http://x:1", model="m", keep_alive=0
    )
    assert link == {
        "url": llm.url,
        "model": "gemma3:12b-it-qat",
        "keep_alive": "7",
        "keep_alive_unit": "minutes",
    }


def test_generate_advance_passes_its_sampling_inputs(tmp_path: Path, llm: LLMServer) -> None:
    ctx = context(tmp_path, LLMSettings(ollama_url=llm.url))
    text, out_context = run(
        "OllamaGenerateAdvance", ctx, prompt="p", debug=False, url="http://x:1", model="gemma3:12b-it-qat",
        system="s", seed=3, top_k=40, top_p=0.9, temperature=0.8, num_predict=-1, tfs_z=1.0, keep_alive=5,
        keep_context=False, format="text", filter_thinking=True,
    )  # fmt: skip
    (seen,) = llm.seen
    sampling = {"seed": 3, "top_k": 40, "top_p": 0.9, "temperature": 0.8, "num_predict": -1, "tfs_z": 1.0}
    assert seen.body["options"] == sampling
    assert (
        seen.body["keep_alive"] == "5m" and text == "gemma3:12b-it-qat: p" and out_context == [1, len(text)]
    )


def test_ask_gemini_sends_its_three_image_inputs_in_order(tmp_path: Path, llm: LLMServer) -> None:
    ctx = context(tmp_path, LLMSettings(gemini_url=llm.url))
    (text,) = run(
        "Ask_Gemini", ctx, prompt="p", safety_settings="BLOCK_NONE", response_type="json",
        model="gemini-2.0-flash-001", api_key=llm.gemini_key, temperature=0.0, num_predict=12,
        image_1=batch((1, 1, 1), size=(3, 3)), image_3=batch((2, 2, 2), (3, 3, 3), size=(5, 5)),
    )  # fmt: skip
    (seen,) = llm.seen
    assert seen.images == [("webp", (3, 3)), ("webp", (5, 5)), ("webp", (5, 5))]
    assert seen.body["generationConfig"] == {"responseMimeType": "application/json", "temperature": 0.0,
                                             "maxOutputTokens": 12}  # fmt: skip
    assert text == "gemini-2.0-flash-001 [webp 3x3] [webp 5x5] [webp 5x5]: p"


def test_ask_gemini_error_fallback(tmp_path: Path, llm: LLMServer) -> None:
    ctx = context(tmp_path, LLMSettings(gemini_url=llm.url, google_api_key="bad"))
    inputs = {"prompt": "p", "model": "gemini-2.0-flash-001"}
    assert run("Ask_Gemini", ctx, **inputs, error_fallback_value="fallback") == ("fallback",)
    with pytest.raises(ProviderError, match="API key not valid"):
        run("Ask_Gemini", ctx, **inputs, error_fallback_value="")
    # the node's own key wins over the setting, as in the pack
    assert run("Ask_Gemini", ctx, **inputs, api_key=llm.gemini_key)[0].endswith(": p")


def test_vision_without_images_is_refused_clearly(tmp_path: Path, llm: LLMServer) -> None:
    ctx = context(tmp_path, LLMSettings(ollama_url=llm.url))
    with pytest.raises(InvalidInput, match=r"image batch \(B, H, W, C\)"):
        run("OllamaVision", ctx, images=np.zeros((4, 4)), query="q", model="llava:13b")


def test_pictures_truncate_like_the_packs() -> None:
    image = np.array([[[0.5, 0.999, 1.2], [-0.1, 1 / 255, 254.5 / 255]]], dtype=np.float32)[None]
    (png,) = pictures(image)
    got = np.asarray(Image.open(io.BytesIO(png.data)))
    # uint8(clip(255 * x, 0, 255)): 127.5 -> 127, 254.745 -> 254, 306 -> 255, -25.5 -> 0
    expected = np.clip(np.float32(255.0) * image[0], 0, 255).astype(np.uint8)
    assert got.tolist() == expected.tolist() and got[0, 0].tolist() == [127, 254, 255]
    (webp,) = pictures(image, "WEBP")
    assert webp.mime == "image/webp"
    assert np.asarray(Image.open(io.BytesIO(webp.data)).convert("RGB")).tolist() == expected.tolist()
    rgba = pictures(np.ones((1, 2, 2, 4), dtype=np.float32))
    assert Image.open(io.BytesIO(rgba[0].data)).mode == "RGBA"


def test_text_nodes(tmp_path: Path) -> None:
    ctx = context(tmp_path, LLMSettings())
    assert run("StringConcatenate", ctx, string_a="a", string_b="b", delimiter=", ") == ("a, b",)
    assert run("ShowText|pysssss", ctx, text="shown") == ("shown",)
    assert run("SaveText|pysssss", ctx, root_dir="output", file="f.txt", append="append", text="héllo") == (
        "héllo",
    )
    saved = ctx.env.outputs["7"]
    assert [p.name for p in saved] == ["7_0.txt"] and saved[0].read_text(encoding="utf-8") == "héllo"


def test_english_is_judged_by_latin_words() -> None:
    assert is_english("A cat in a hat, 4k, 1024x768")
    assert is_english("")
    assert not is_english("Кот в шляпе")
    assert not is_english("a photo of 東京 at night")  # 1 of 5 words is not Latin: 80%
    assert is_english("a very nice photo of a cat on a mat in Zürich ok")  # ü is not ASCII: 12 of 13


def test_surprise_me_request_and_answer() -> None:
    prompt = surprise_request(3, "winter", random.Random(1))
    assert prompt.json and "3 different prompts" in prompt.text and "winter" in prompt.text
    assert prompt.text.count("Prompt ") == 3
    assert surprise_prompts('```json\n["a", "b"]\n```', 2, "ollama") == ["a", "b"]
    assert surprise_prompts('{"prompts": ["a", "b", "c"]}', 2, "openai") == ["a", "b"]
    with pytest.raises(ProviderError, match="wanted a JSON list of 3 prompts"):
        surprise_prompts('["only one"]', 3, "gemini")


def test_ollama_images_are_base64_png(tmp_path: Path, llm: LLMServer) -> None:
    ctx = context(tmp_path, LLMSettings(ollama_url=llm.url))
    run(
        "OllamaVision",
        ctx,
        images=batch((9, 9, 9)),
        query="q",
        model="llava:13b",
        keep_alive=-1,
        format="text",
    )
    (seen,) = llm.seen
    assert seen.body["keep_alive"] == "-1m"
    assert base64.b64decode(seen.body["images"][0])[:8] == b"\x89PNG\r\n\x1a\n"
