"""LoraLoader / LoraLoaderModelOnly for Flux LoRAs (``nodes/lora.LORA_PATCHERS["flux-lora"]``).

The patched transformer (and CLIP-L, for LoRAs that train it) are copies kept in the model cache
under the base model's identity plus the file and strength, so the next task with the same LoRA
pays nothing; the loaded model stays as it was (``nets/flux_lora``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from visionatrix.engine.context import NodeContext
from visionatrix.errors import InvalidInput


def _file_id(path: Path) -> str:
    stat = path.stat()
    return f"lora:{path}:{stat.st_size}:{stat.st_mtime_ns}"


def patch_flux(
    ctx: NodeContext, path: Path, model: Any, clip: Any, strength_model: float, strength_clip: float
) -> tuple[Any, Any]:
    from visionatrix.engine.nets import flux_lora
    from visionatrix.engine.nets.flux_net import FluxNet
    from visionatrix.engine.nets.flux_text import FluxClip

    if model is not None and not isinstance(getattr(model, "unet", None), FluxNet):
        raise InvalidInput(f"LoRA {path.name} is a Flux LoRA; the model it is applied to is not Flux")
    if clip is not None and not isinstance(clip, FluxClip):
        raise InvalidInput(f"LoRA {path.name} is a Flux LoRA; the CLIP it is applied to is not Flux's")
    use_model = model if model is not None and strength_model != 0 else None
    use_clip = clip if clip is not None and strength_clip != 0 else None
    found: list[dict[str, Any]] = []  # the file's updates, read once on first use

    def deltas(component: str) -> Any:
        if not found:
            transformer = use_model.unet.transformer if use_model is not None else None
            found.append(flux_lora.read_updates(path, transformer, use_clip.clip_l if use_clip else None))
        return found[0].get(component, {})

    if use_model is not None:
        net = use_model.unet
        identity = use_model.identity and f"{use_model.identity}|{_file_id(path)}@{strength_model}"

        def load_net() -> FluxNet:
            transformer = flux_lora.patched_copy(
                net.transformer, deltas(flux_lora.TRANSFORMER), strength_model
            )
            return FluxNet(transformer, net.in_channels, net.out_channels, net.device, net.dtype)

        patched = _cached(
            ctx,
            identity,
            load_net,
            lambda: flux_lora.added_bytes(net.transformer, deltas(flux_lora.TRANSFORMER)),
        )
        model = dataclasses.replace(use_model, unet=patched, identity=identity)
    if use_clip is not None:
        identity = use_clip.identity and f"{use_clip.identity}|{_file_id(path)}@{strength_clip}"
        clip_l = _cached(
            ctx,
            identity,
            lambda: flux_lora.patched_copy(use_clip.clip_l, deltas(flux_lora.CLIP_L), strength_clip),
            lambda: flux_lora.added_bytes(use_clip.clip_l, deltas(flux_lora.CLIP_L)),
        )
        clip = dataclasses.replace(use_clip, clip_l=clip_l, identity=identity)
    return model, clip


def _cached(ctx: NodeContext, identity: str, load: Any, size: Any) -> Any:
    if not identity:  # weights of unknown origin: nothing to key a cached copy by
        return load()
    return ctx.models.cached(identity, load, size())
