"""Background removal with U²-Net's small variant (``u2netp.onnx``, 4.6 MB) on onnxruntime.

A general salient-object model: it cuts out the main subject (a person, an animal, an object)
of any photo. Pre- and post-processing follow rembg's, so the same file gives the same masks:
the RGB image resized to 320×320, divided by its maximum, normalised with the ImageNet mean
and std; the first of the seven side outputs, min-max normalised, is the alpha.

Nodes:
    LoadU2NetModel(model="u2netp.onnx")   -> (U2NET_MODEL,)     file: MODELS_DIR/rembg/<model>
    RembgByU2Net(model, images)           -> (IMAGE RGBA, MASK)

onnxruntime is imported on first use, so this module loads without the worker stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionatrix.engine.context import NodeContext
from visionatrix.engine.model_inputs import ModelInput
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

MODEL_FOLDER = "rembg"
INPUT_SIZE = (320, 320)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class U2NetModel:
    session: Any  # onnxruntime.InferenceSession; its run() is safe to call from several threads
    input_name: str


@node("LoadU2NetModel")
class LoadU2NetModel:
    model_inputs = {"model": ModelInput(MODEL_FOLDER, {"u2net"})}

    def run(self, ctx: NodeContext, model: str = "u2netp.onnx", **_: Any) -> tuple[U2NetModel]:
        path = ctx.models.path(MODEL_FOLDER, model)
        providers = _providers(ctx.device)
        loaded = ctx.models.cached(
            f"u2net:{path}:{'+'.join(providers)}",
            lambda: open_model(path, providers),
            size_bytes=path.stat().st_size,
        )
        return (loaded,)


@node("RembgByU2Net")
class RembgByU2Net:
    def run(
        self, ctx: NodeContext, model: U2NetModel, images: np.ndarray, **_: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        batch = _as_image_batch(images)
        b, h, w, _ = batch.shape
        rgba = np.empty((b, h, w, 4), dtype=np.float32)
        for i, image in enumerate(batch):
            ctx.progress(i / b)
            rgba[i, ..., :3] = image[..., :3]
            rgba[i, ..., 3] = predict_alpha(model, image[..., :3])
        ctx.progress(1.0)
        return rgba, rgba[..., 3].copy()


def open_model(path: Path, providers: list[str] | None = None) -> U2NetModel:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One image at a time: every core on the convolutions, none on running operators side by side.
    options.intra_op_num_threads = _usable_cpus()
    options.inter_op_num_threads = 1
    # Spinning idle threads win a few ms on an idle machine and lose seconds on a busy one (measured
    # on 2 cores shared with another process: 0.9 s spinning vs 0.6 s without).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"]
    )
    return U2NetModel(session=session, input_name=session.get_inputs()[0].name)


def predict_alpha(model: U2NetModel, rgb: np.ndarray) -> np.ndarray:
    """Alpha (H, W) in [0, 1] for one float RGB image (H, W, 3) in [0, 1]."""
    h, w = rgb.shape[:2]
    side_outputs = model.session.run(None, {model.input_name: _preprocess(rgb)})
    mask = _min_max(side_outputs[0][0, 0].astype(np.float32))
    resized = Image.fromarray(mask).resize((w, h), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _preprocess(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> (1, 3, 320, 320) float32, as the model was trained."""
    as_bytes = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    small = np.asarray(
        Image.fromarray(as_bytes).resize(INPUT_SIZE, Image.Resampling.LANCZOS), dtype=np.float32
    )
    small /= max(float(small.max()), 1e-6)
    normalised = (small - MEAN) / STD
    return normalised.transpose(2, 0, 1)[np.newaxis].astype(np.float32)


def _min_max(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-12:  # a flat prediction carries no subject: nothing to keep
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def _as_image_batch(images: Any) -> np.ndarray:
    batch = np.asarray(images, dtype=np.float32)
    if batch.ndim == 3:
        batch = batch[np.newaxis]
    if batch.ndim != 4 or batch.shape[-1] not in (3, 4):
        raise InvalidInput(f"images: expected an IMAGE batch (B, H, W, 3 or 4), got shape {batch.shape}")
    return batch


def _providers(device: str) -> list[str]:
    if device.startswith("cuda"):
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
