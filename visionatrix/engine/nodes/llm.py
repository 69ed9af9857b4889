"""LLM nodes: the comfyui-ollama pack (v2.0.5, as Visionatrix pins it) and Visionatrix's Ask_Gemini.

They call the providers of ``visionatrix.llm`` with the settings the task brought
(``ctx.env.options["llm"]``). As a Visionatrix worker does, a setting that is set replaces the
node's own input: ``ollama_url`` and ``ollama_keepalive`` on every Ollama node,
``ollama_vision_model`` on OllamaVision, ``ollama_llm_model`` on the others; ``gemini_model``,
``google_proxy`` and the ``google_api_key`` (when the node has none) on Ask_Gemini. The setting
``llm_nodes_provider`` sends every LLM node to that one provider instead (say, an
OpenAI-compatible server where no Ollama runs). Images go as the packs encode them: PNG to
Ollama, lossless WebP to Gemini, each 8-bit channel truncated from ``255 * value``.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from typing import Any

import numpy as np
from PIL import Image

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput, ProviderError
from visionatrix.llm import Gemini, LLMSettings, Ollama, Picture, Prompt, Reply, provider, strip_thinking

log = logging.getLogger(__name__)


def settings_of(ctx: NodeContext) -> LLMSettings:
    settings = ctx.env.options.get("llm")
    return settings if isinstance(settings, LLMSettings) else LLMSettings()


def pictures(images: Any, fmt: str = "PNG") -> tuple[Picture, ...]:
    """Each image of an IMAGE batch encoded as the node packs do (``uint8(clip(255 * x))``)."""
    if images is None:
        return ()
    batch = np.asarray(images, dtype=np.float32)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3, 4):
        raise InvalidInput(f"images must be an image batch (B, H, W, C), got shape {batch.shape}")
    out = []
    for image in batch:
        pixels = np.clip(255.0 * image, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        options = {"lossless": True} if fmt == "WEBP" else {}
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, fmt, **options)
        out.append(Picture(buffer.getvalue(), f"image/{fmt.lower()}"))
    return tuple(out)


def minutes(keep_alive: Any, unit: str = "minutes") -> str:
    """The pack's ``keep_alive`` request value: the number and its unit letter."""
    return f"{keep_alive}{'h' if unit == 'hours' else 'm'}"


def ollama_generate(
    ctx: NodeContext, prompt: Prompt, *, url: str, keep_alive: str, context: list[int] | None = None
) -> Reply:
    """``/api/generate`` on the node's Ollama, or the ``llm_nodes_provider`` when one is set."""
    settings = settings_of(ctx)
    ctx.check_cancel()
    log.debug("node %s asks %s (%s)", ctx.node_id, prompt.model, url)
    if settings.llm_nodes_provider and settings.llm_nodes_provider != "ollama":
        routed = provider(settings.llm_nodes_provider, settings, vision=bool(prompt.images))
        return routed.ask(dataclasses.replace(prompt, model=""))
    return Ollama(url, prompt.model, keep_alive=keep_alive, timeout=settings.timeout).generate(
        prompt, context
    )


def _text_format(fmt: Any) -> bool:
    return str(fmt) == "json"


@node("OllamaVision")
class OllamaVision:
    """Describes ``images`` as ``query`` asks (``/api/generate`` with the images)."""

    def run(
        self, ctx: NodeContext, images: Any, query: str, url: str = "", model: str = "",
        keep_alive: Any = 5, format: str = "text", **_: Any,
    ) -> tuple[str]:  # fmt: skip
        settings = settings_of(ctx)
        prompt = Prompt(
            text=str(query),
            images=pictures(images),
            json=_text_format(format),
            model=settings.ollama_vision_model or str(model),
        )
        keep = minutes(settings.ollama_keepalive or keep_alive)
        return (ollama_generate(ctx, prompt, url=settings.ollama_url or url, keep_alive=keep).text,)


@node("OllamaGenerate")
class OllamaGenerate:
    def run(
        self, ctx: NodeContext, prompt: str, url: str = "", model: str = "", keep_alive: Any = 5,
        format: str = "text", filter_thinking: bool = True, **_: Any,
    ) -> tuple[str]:  # fmt: skip
        settings = settings_of(ctx)
        request = Prompt(
            text=str(prompt), json=_text_format(format), model=settings.ollama_llm_model or str(model)
        )
        keep = minutes(settings.ollama_keepalive or keep_alive)
        text = ollama_generate(ctx, request, url=settings.ollama_url or url, keep_alive=keep).text
        return (strip_thinking(text) if filter_thinking else text,)


@node("OllamaGenerateAdvance")
class OllamaGenerateAdvance:
    """Generation with a system prompt, sampling options and a conversation ``context``."""

    OPTIONS = ("seed", "top_k", "top_p", "temperature", "num_predict", "tfs_z")

    def run(
        self, ctx: NodeContext, prompt: str, url: str = "", model: str = "", system: str = "",
        keep_alive: Any = 5, format: str = "text", filter_thinking: bool = True, context: Any = None,
        **inputs: Any,
    ) -> tuple[str, list[int] | None]:  # fmt: skip
        settings = settings_of(ctx)
        request = Prompt(
            text=str(prompt),
            system=str(system),
            json=_text_format(format),
            options={k: inputs[k] for k in self.OPTIONS if k in inputs},
            model=settings.ollama_llm_model or str(model),
        )
        keep = minutes(settings.ollama_keepalive or keep_alive)
        reply = ollama_generate(
            ctx, request, url=settings.ollama_url or url, keep_alive=keep, context=parse_context(context)
        )
        return (strip_thinking(reply.text) if filter_thinking else reply.text, reply.context)


def parse_context(context: Any) -> list[int] | None:
    """A context as the pack takes it: a list, or its comma-separated text."""
    if context is None or context == "":
        return None
    if isinstance(context, str):
        try:
            return [int(item.strip()) for item in context.split(",")]
        except ValueError as exc:
            raise InvalidInput(f"context must be comma-separated integers, got {context[:60]!r}") from exc
    return [int(v) for v in context]


@node("OllamaOptionsV2")
class OllamaOptionsV2:
    """All of its inputs as one OLLAMA_OPTIONS value; the ``enable_*`` flags pick what is sent."""

    def run(self, ctx: NodeContext, **inputs: Any) -> tuple[dict[str, Any]]:
        return (dict(inputs),)


@node("OllamaConnectivityV2")
class OllamaConnectivityV2:
    def run(
        self, ctx: NodeContext, url: str = "", model: str = "", keep_alive: Any = 5,
        keep_alive_unit: str = "minutes", **_: Any,
    ) -> tuple[dict[str, Any]]:  # fmt: skip
        settings = settings_of(ctx)
        return (
            {
                "url": settings.ollama_url or url,
                "model": settings.ollama_llm_model or model,
                "keep_alive": settings.ollama_keepalive or keep_alive,
                "keep_alive_unit": keep_alive_unit,
            },
        )


# the pack's option switches; each enables the option of the same name without the prefix
ENABLERS = tuple(
    f"enable_{name}"
    for name in ("mirostat", "mirostat_eta", "mirostat_tau", "num_ctx", "repeat_last_n", "repeat_penalty",
                 "temperature", "seed", "stop", "tfs_z", "num_predict", "top_k", "top_p", "min_p")
)  # fmt: skip


def enabled_options(options: dict[str, Any] | None) -> dict[str, Any]:
    if not options:
        return {}
    return {e.removeprefix("enable_"): options[e.removeprefix("enable_")] for e in ENABLERS if options.get(e)}


@node("OllamaGenerateV2")
class OllamaGenerateV2:
    """Generation from a connectivity (url, model, keep-alive) and options; images optional."""

    def run(
        self, ctx: NodeContext, system: str = "", prompt: str = "", filter_thinking: bool = True,
        format: str = "text", context: Any = None, options: dict[str, Any] | None = None,
        connectivity: dict[str, Any] | None = None, images: Any = None, meta: dict[str, Any] | None = None,
        **_: Any,
    ) -> tuple[str, list[int] | None, dict[str, Any]]:  # fmt: skip
        meta = dict(meta or {})
        meta["connectivity"] = connectivity or meta.get("connectivity")
        meta["options"] = options if options is not None else meta.get("options")
        link = meta["connectivity"]
        if not link:
            raise InvalidInput("OllamaGenerateV2 needs a connectivity input (or one in meta)")
        request = Prompt(
            text=str(prompt),
            system=str(system),
            images=pictures(images),
            json=_text_format(format),
            options=enabled_options(options),
            model=str(link["model"]),
        )
        keep = minutes(link["keep_alive"], link.get("keep_alive_unit", "minutes"))
        reply = ollama_generate(
            ctx, request, url=str(link["url"]), keep_alive=keep, context=parse_context(context)
        )
        text = strip_thinking(reply.text) if filter_thinking else reply.text
        return (text, reply.context, meta)


@node("Ask_Gemini")
class AskGemini:
    """Visionatrix's ComfyUI-Gemini node: the prompt and up to three image batches to Gemini."""

    def run(
        self, ctx: NodeContext, prompt: str, safety_settings: str = "BLOCK_NONE", response_type: str = "text",
        model: str = "", api_key: str = "", proxy: str = "", system_instruction: str = "",
        error_fallback_value: str = "", temperature: float | None = None, num_predict: int | None = None,
        **images: Any,
    ) -> tuple[str]:  # fmt: skip
        settings = settings_of(ctx)
        request = Prompt(
            text=str(prompt),
            system=str(system_instruction or ""),
            images=sum((pictures(images.get(f"image_{n}"), "WEBP") for n in (1, 2, 3)), ()),
            json=response_type == "json",
            temperature=temperature if temperature is not None and temperature >= 0 else None,
            max_tokens=num_predict if num_predict is not None and num_predict > 0 else None,
        )
        ctx.check_cancel()
        try:
            if settings.llm_nodes_provider and settings.llm_nodes_provider != "gemini":
                routed = provider(settings.llm_nodes_provider, settings, vision=bool(request.images))
                return (routed.ask(request).text,)
            gemini = Gemini(
                api_key or settings.google_api_key,
                settings.gemini_model or model,
                base_url=settings.gemini_url,
                proxy=settings.google_proxy or proxy,
                safety=safety_settings,
                timeout=settings.timeout,
            )
            return (gemini.ask(request).text,)
        except ProviderError:
            if error_fallback_value:
                return (str(error_fallback_value),)
            raise
