"""LoRA nodes with ComfyUI's names, inputs and outputs.

    LoraLoader(model, clip, lora_name, strength_model, strength_clip) -> (MODEL, CLIP)
    LoraLoaderModelOnly(model, lora_name, strength_model)            -> (MODEL,)
    VixDynamicLoraDefinition(model, clip, base_model_type, description) -> (MODEL, CLIP)

The file is ``MODELS_DIR/loras/<lora_name>``. Its architecture, read from its header
(``models.architecture``: an SDXL LoRA names SDXL-only layers), picks the patcher in
``LORA_PATCHERS``; a model family adds its LoRAs with an entry there. The SDXL patcher merges the
update into *copies* of the UNet and text encoders (``nets/lora``): the loaded checkpoint is shared
by every task and stays as it was, and a patched copy shares every weight the LoRA leaves alone.
Patched copies are kept in the model cache under the base model's identity plus the file and
strength, so the next task with the same LoRA pays nothing. A strength of 0 returns the input
unchanged (ComfyUI adds a zero update, which changes no weight).

``VixDynamicLoraDefinition`` (ComfyUI-Visionatrix) marks where Visionatrix's UI may connect LoRAs
the user picks; as a node it passes model and CLIP through unchanged, as in its node pack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.context import NodeContext
from visionatrix.engine.model_inputs import ModelInput, resolve_by_kind
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    from visionatrix.engine.nets.lora import LowRank
    from visionatrix.engine.nodes.sdxl import SdxlClip
    from visionatrix.engine.sampling.diffusion_model import DiffusionModel

LORA_FOLDER = "loras"

# (ctx, lora file, model or None, clip or None, strength_model, strength_clip) -> (model, clip)
Patcher = Callable[[NodeContext, Path, Any, Any, float, float], tuple[Any, Any]]


class _Updates:
    """The LoRA file's updates matched to one model's weights, read on first use."""

    def __init__(self, path: Path, key_map: Callable[[], dict[Any, Any]]) -> None:
        self._path, self._key_map = path, key_map
        self._found: dict[str, dict[str, LowRank]] | None = None

    def of(self, component: str) -> dict[str, LowRank]:
        from visionatrix.engine.nets import lora

        if self._found is None:
            self._found = lora.split(lora.match(lora.read_lora(self._path), self._key_map()))
        return self._found.get(component, {})


def _file_id(path: Path) -> str:
    stat = path.stat()
    return f"lora:{path}:{stat.st_size}:{stat.st_mtime_ns}"


@dataclasses.dataclass(frozen=True)
class _Sized:
    """A cached patched copy and the bytes it adds (the model cache reads ``nbytes``)."""

    value: Any
    nbytes: int


def _patched(ctx: NodeContext, identity: str, load: Callable[[], Any], size: Callable[[], int]) -> Any:
    """``load()``, kept in the model cache under ``identity``; ``size()``: the bytes it adds."""
    if not identity:  # weights of unknown origin: nothing to key a cached copy by
        return load()
    return ctx.models.cached(identity, lambda: _Sized(load(), size())).value


def _sdxl_key_map(model: DiffusionModel | None, clip: SdxlClip | None) -> dict[Any, Any]:
    from visionatrix.engine.nets import lora_keys

    found = {}
    if model is not None:
        found.update(lora_keys.unet_key_map(dict(model.unet.named_parameters()), dict(model.unet.config)))
    if clip is not None:
        for component in ("text_encoder", "text_encoder_2"):
            names = dict(getattr(clip, component).named_parameters())
            found.update(lora_keys.clip_key_map(component, names))
    return found


def _bytes(module: Any, updates: dict[str, LowRank]) -> int:
    params = dict(module.named_parameters())
    return sum(params[k].numel() * params[k].element_size() for k in updates if k in params)


def _patch_sdxl(
    ctx: NodeContext, path: Path, model: Any, clip: Any, strength_model: float, strength_clip: float
) -> tuple[Any, Any]:
    from visionatrix.engine.nets.lora import patched_copy
    from visionatrix.engine.nodes.sdxl import SdxlClip
    from visionatrix.engine.sampling.diffusion_model import DiffusionModel

    if model is not None and not isinstance(model, DiffusionModel):
        raise InvalidInput(f"LoRA {path.name} is an SDXL LoRA; the model it is applied to is not SDXL")
    if clip is not None and not isinstance(clip, SdxlClip):
        raise InvalidInput(f"LoRA {path.name} is an SDXL LoRA; the CLIP it is applied to is not SDXL's")
    use_model = model if model is not None and strength_model != 0 else None
    use_clip = clip if clip is not None and strength_clip != 0 else None
    # the map covers both inputs even at strength 0: their layers are the LoRA's, not unknown ones
    updates = _Updates(path, lambda: _sdxl_key_map(model, clip))
    if use_model is not None:
        identity = use_model.identity and use_model.identity + f"|{_file_id(path)}@{strength_model}"
        unet = _patched(
            ctx,
            identity,
            lambda: patched_copy(use_model.unet, updates.of("unet"), strength_model),
            lambda: _bytes(use_model.unet, updates.of("unet")),
        )
        model = dataclasses.replace(use_model, unet=unet, identity=identity)
    if use_clip is not None:
        identity = use_clip.identity and use_clip.identity + f"|{_file_id(path)}@{strength_clip}"
        pair = _patched(
            ctx,
            identity,
            lambda: tuple(
                patched_copy(getattr(use_clip, c), updates.of(c), strength_clip)
                for c in ("text_encoder", "text_encoder_2")
            ),
            lambda: sum(
                _bytes(getattr(use_clip, c), updates.of(c)) for c in ("text_encoder", "text_encoder_2")
            ),
        )
        clip = dataclasses.replace(use_clip, text_encoder=pair[0], text_encoder_2=pair[1], identity=identity)
    return model, clip


def _patch_flux(
    ctx: NodeContext, path: Path, model: Any, clip: Any, strength_model: float, strength_clip: float
) -> tuple[Any, Any]:
    from visionatrix.engine.nodes.flux_lora import patch_flux

    return patch_flux(ctx, path, model, clip, strength_model, strength_clip)


# architecture kind of the LoRA file (models.architecture.KINDS) -> what applies it
LORA_PATCHERS: dict[str, Patcher] = {
    "sdxl-lora": _patch_sdxl,
    "flux-lora": _patch_flux,
}


def apply_lora(
    ctx: NodeContext, lora_name: str, model: Any, clip: Any, strength_model: float, strength_clip: float
) -> tuple[Any, Any]:
    """``model`` and ``clip`` with the LoRA file ``lora_name`` applied (either may be ``None``)."""
    path, patch = resolve_by_kind(ctx.models, LORA_FOLDER, lora_name, LORA_PATCHERS, "LoRA")
    for name, value in (("strength_model", strength_model), ("strength_clip", strength_clip)):
        if not -100.0 <= float(value) <= 100.0:  # ComfyUI's input range
            raise InvalidInput(f"LoRA {name} must be within -100..100, got {value}")
    return patch(ctx, path, model, clip, float(strength_model), float(strength_clip))


@node("LoraLoader")
class LoraLoader:
    model_inputs = {"lora_name": ModelInput(LORA_FOLDER, LORA_PATCHERS)}

    def run(
        self,
        ctx: NodeContext,
        model: Any,
        clip: Any,
        lora_name: str,
        strength_model: float = 1.0,
        strength_clip: float = 1.0,
    ) -> tuple[Any, Any]:
        return apply_lora(ctx, lora_name, model, clip, strength_model, strength_clip)


@node("LoraLoaderModelOnly")
class LoraLoaderModelOnly:
    model_inputs = {"lora_name": ModelInput(LORA_FOLDER, LORA_PATCHERS)}

    def run(self, ctx: NodeContext, model: Any, lora_name: str, strength_model: float = 1.0) -> tuple[Any]:
        return (apply_lora(ctx, lora_name, model, None, strength_model, 0.0)[0],)


@node("VixDynamicLoraDefinition")
class VixDynamicLoraDefinition:
    def run(self, ctx: NodeContext, model: Any, clip: Any, **_: Any) -> tuple[Any, Any]:
        return model, clip
