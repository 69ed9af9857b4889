"""Fixtures of the Flux tests: tiny files in the published layouts, a model store, a node context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from visionatrix.engine.context import NodeContext, RunEnv  # noqa: E402
from visionatrix.engine.registry import lookup  # noqa: E402
from visionatrix.models.cache import ModelStore  # noqa: E402
from visionatrix.testing import tiny_flux  # noqa: E402

DEV, SCHNELL, FILL, KONTEXT = (
    "flux1-dev.sft",
    "flux1-schnell.safetensors",
    "flux1-fill-dev.safetensors",
    "flux1-kontext-dev.safetensors",
)
T5, T5_FP8, CLIP_L, VAE, CHECKPOINT = (
    "t5xxl_fp16.safetensors",
    "t5xxl_fp8_e4m3fn.safetensors",
    "clip_l.safetensors",
    "ae.safetensors",
    "flux1-dev-fp8.safetensors",
)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models: a second OpenMP thread only costs on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def flux_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flux_models")
    tiny_flux.write_transformer(root / "diffusion_models" / DEV, seed=1, fp8=True)
    tiny_flux.write_transformer(root / "diffusion_models" / SCHNELL, seed=2, guidance=False)
    tiny_flux.write_transformer(root / "diffusion_models" / FILL, seed=3, fill=True)
    tiny_flux.write_transformer(root / "diffusion_models" / KONTEXT, seed=4)
    tiny_flux.write_t5(root / "text_encoders" / T5, seed=5)
    tiny_flux.write_t5(root / "text_encoders" / T5_FP8, seed=5, fp8=True)
    tiny_flux.write_clip_l(root / "text_encoders" / CLIP_L, seed=6)
    tiny_flux.write_vae(root / "vae" / VAE, seed=7)
    tiny_flux.write_checkpoint(root / "checkpoints" / CHECKPOINT, seed=8)
    return root


@pytest.fixture(scope="session")
def flux_store(flux_models: Path) -> ModelStore:
    return ModelStore(flux_models)


@pytest.fixture
def ctx(flux_store: ModelStore, tmp_path: Path) -> NodeContext:
    env = RunEnv(
        models=flux_store, input_dir=tmp_path, output_dir=tmp_path, tmp_dir=tmp_path, precision="float32"
    )
    return NodeContext(env, "1", "test")


def run(class_type: str, ctx: NodeContext, **inputs: Any) -> tuple[Any, ...]:
    cls = lookup(class_type)
    assert cls is not None, class_type
    return cls().run(NodeContext(ctx.env, class_type, class_type), **inputs)
