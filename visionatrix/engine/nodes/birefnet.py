"""Background removal with BiRefNet (ComfyUI_BiRefNet_ll's nodes, as Visionatrix flows use them).

Nodes:
    LoadRembgByBiRefNetModel(model, device, use_weight, dtype) -> (BIREFNET_MODEL,)
        file: MODELS_DIR/birefnet/<model> ("General.safetensors", "General-Lite.safetensors", or
        BRIA's RMBG-2.0 "bria-rmbg-2.safetensors": a BiRefNet-General (Swin-L) trained by BRIA,
        with the same tensor names, shapes and configuration; the node pack loads it the same way)
    RembgByBiRefNet(model, images) -> (IMAGE RGBA, MASK)

As the node pack's current ``RembgByBiRefNet`` does: the image is resized to 1024x1024 and
normalised with the ImageNet mean/std; the sigmoid of the last prediction, resized back to the
image (bilinear, no min-max stretch), is the MASK and the cut-out's alpha; the cut-out's RGB is
the foreground colour estimated by blur fusion (``nets/foreground``, radii 90 and 6, 8-bit), so
edge pixels carry the object's colour instead of a mix with the old background.

Number format: the worker's precision setting decides (``VIX_PRECISION``; "auto": bfloat16 on
CPUs with native bf16 — about 2× faster than float32 there, alpha within ~0.001 — float16 on
CUDA, else float32). ``VIX_PRECISION=float32`` computes exactly as the node does in float32.
The node's ``dtype`` input (the flows pass "float32") is therefore not read; ``use_weight``
(load ImageNet backbone weights before the checkpoint) cannot change the result and is ignored.
``RunEnv.options["birefnet_size"]`` overrides the 1024 input size (tests use a small one).
torch is imported on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from visionatrix.engine.context import NodeContext
from visionatrix.engine.model_inputs import ModelInput
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

MODEL_FOLDER = "birefnet"
SIZE_OPTION = "birefnet_size"


@node("LoadRembgByBiRefNetModel")
class LoadRembgByBiRefNetModel:
    # RMBG-2.0's header is BiRefNet's (same names): "rmbg-2.0" is the catalog's word for it before download
    model_inputs = {"model": ModelInput(MODEL_FOLDER, {"birefnet", "rmbg-2.0"})}

    def run(
        self,
        ctx: NodeContext,
        model: str = "General.safetensors",
        device: str = "AUTO",
        use_weight: bool = False,
        dtype: str = "float32",
        **_: Any,
    ) -> tuple[Any]:
        import torch

        from visionatrix.engine.compiled import OPTION, maybe_compiled
        from visionatrix.engine.nets.birefnet import load_birefnet
        from visionatrix.models.device import choose_precision

        path = ctx.models.path(MODEL_FOLDER, model)
        target = "cpu" if str(device).upper() == "CPU" else ctx.device
        torch_dtype = getattr(torch, choose_precision(target, ctx.precision))
        stat = path.stat()
        compile_mode = ctx.env.options.get(OPTION)
        key = f"birefnet:{path}:{stat.st_size}:{stat.st_mtime_ns}:{target}:{torch_dtype}:{compile_mode}"
        loaded = ctx.models.cached(
            key,
            lambda: maybe_compiled(load_birefnet(path, dtype=torch_dtype, device=target), ctx.env.options),
            size_bytes=_loaded_bytes(path, torch_dtype.itemsize),
        )
        return (loaded,)


@node("RembgByBiRefNet")
class RembgByBiRefNet:
    def run(self, ctx: NodeContext, model: Any, images: Any, **_: Any) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from visionatrix.engine.nets.birefnet import INPUT_SIZE, SIZE_MULTIPLE, predict_alpha
        from visionatrix.engine.nets.foreground import estimate_foreground

        size = int(ctx.env.options.get(SIZE_OPTION, INPUT_SIZE))
        if size <= 0 or size % SIZE_MULTIPLE:
            raise InvalidInput(f"option {SIZE_OPTION}={size}: must be a positive multiple of {SIZE_MULTIPLE}")
        batch = _as_image_batch(images)
        b, h, w, _ = batch.shape
        rgba = np.empty((b, h, w, 4), dtype=np.float32)
        for i, image in enumerate(batch):
            ctx.progress(i / b)
            rgb = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)[None]
            alpha = predict_alpha(model, rgb, size)[0].cpu().numpy()
            rgba[i, ..., :3] = estimate_foreground(image[..., :3], alpha)
            rgba[i, ..., 3] = alpha
        ctx.progress(1.0)
        return rgba, rgba[..., 3].copy()


def _loaded_bytes(path: Path, itemsize: int) -> int | None:
    """Bytes the weights take once loaded: values in the file times the compute dtype's size."""
    if path.suffix != ".safetensors":
        return None
    from safetensors import safe_open

    values = 0
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            values += int(np.prod(f.get_slice(name).get_shape()))
    return values * itemsize


def _as_image_batch(images: Any) -> np.ndarray:
    batch = np.asarray(images, dtype=np.float32)
    if batch.ndim == 3:
        batch = batch[np.newaxis]
    if batch.ndim != 4 or batch.shape[-1] not in (3, 4) or 0 in batch.shape:
        raise InvalidInput(f"images: expected an IMAGE batch (B, H, W, 3 or 4), got shape {batch.shape}")
    return batch
