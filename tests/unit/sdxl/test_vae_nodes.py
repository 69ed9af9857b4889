"""VAELoader, VAEDecode, VAEEncode on a tiny VAE in the layout of Stability's ``sdxl_vae.safetensors``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from safetensors.torch import load_file, save_file  # noqa: E402

from tests.support import FIXTURES  # noqa: E402
from tests.unit.sdxl.chain import make_ctx, run  # noqa: E402
from visionatrix.engine.context import NodeContext  # noqa: E402
from visionatrix.engine.nets import sdxl_keys as keys  # noqa: E402
from visionatrix.errors import InvalidInput  # noqa: E402
from visionatrix.models.architecture import file_kind  # noqa: E402
from visionatrix.models.cache import ModelStore  # noqa: E402
from visionatrix.testing.tiny_sdxl import tiny_configs  # noqa: E402
from visionatrix.testing.tiny_vae import write_tiny_sd_vae  # noqa: E402

pytestmark = pytest.mark.models
MANIFEST = FIXTURES / "sdxl" / "sdxl_checkpoint.state_dict.json"
VAE = "sdxl_vae.safetensors"


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vae_models")
    write_tiny_sd_vae(root / "vae" / VAE, seed=3)
    return root


@pytest.fixture
def vctx(vae_dir: Path, tmp_path: Path) -> NodeContext:
    return make_ctx(ModelStore(vae_dir), tmp_path, [], "float32")


@pytest.mark.skipif(not MANIFEST.is_file(), reason="shared SDXL layout fixture not present")
def test_the_tiny_vae_has_the_published_names_and_dtype(vae_dir: Path) -> None:
    """sdxl_vae.safetensors is the checkpoint's first_stage_model without the prefix, in float32."""
    manifest = json.loads(MANIFEST.read_text())["tensors"]
    published = {k[len(keys.VAE_PREFIX) :] for k in manifest if k.startswith(keys.VAE_PREFIX)}
    tensors = load_file(vae_dir / "vae" / VAE)
    assert set(tensors) == published
    assert {t.dtype for t in tensors.values()} == {torch.float32}
    assert file_kind(vae_dir / "vae" / VAE) == "sd-vae"


def test_loading_matches_diffusers_own_single_file_conversion(
    vae_dir: Path, vctx: NodeContext, tmp_path: Path
) -> None:
    from diffusers import AutoencoderKL

    (tmp_path / "config.json").write_text(json.dumps(tiny_configs("lean")["vae"]))
    theirs = AutoencoderKL.from_single_file(
        str(vae_dir / "vae" / VAE), config=str(tmp_path), local_files_only=True, torch_dtype=torch.float32
    ).state_dict()
    (vae,) = run("VAELoader", vctx, vae_name=VAE)
    mine = vae.vae.state_dict()
    assert theirs.keys() == mine.keys()
    for key, value in theirs.items():
        assert torch.equal(value, mine[key]), key


def test_a_vae_in_diffusers_layout_loads_the_same(vae_dir: Path, vctx: NodeContext) -> None:
    (vae,) = run("VAELoader", vctx, vae_name=VAE)
    folder = vae_dir / "vae"
    save_file(
        {k: v.contiguous() for k, v in vae.vae.state_dict().items()}, str(folder / "diffusers.safetensors")
    )
    try:
        assert file_kind(folder / "diffusers.safetensors") == "sd-vae"
        (again,) = run("VAELoader", vctx, vae_name="diffusers.safetensors")
        for key, value in vae.vae.state_dict().items():
            assert torch.equal(value, again.vae.state_dict()[key]), key
    finally:
        (folder / "diffusers.safetensors").unlink()


def test_a_file_of_another_architecture_is_refused_by_name(vae_dir: Path, vctx: NodeContext) -> None:
    save_file(
        {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)},
        str(vae_dir / "vae" / "unet.safetensors"),
    )
    try:
        with pytest.raises(
            InvalidInput, match=r"VAELoader: unet.safetensors is an unrecognised architecture"
        ):
            run("VAELoader", vctx, vae_name="unet.safetensors")
    finally:
        (vae_dir / "vae" / "unet.safetensors").unlink()


def test_decode_and_encode_compute_what_comfyui_computes(vctx: NodeContext) -> None:
    """Decode: (x + 1) / 2 clamped, channels last. Encode: centred crop to multiples of 8 (53×70 →
    48×64 from row 2, column 3), pixels · 2 − 1, the posterior's mean."""
    (vae,) = run("VAELoader", vctx, vae_name=VAE)
    latent = torch.randn(2, 4, 6, 5, generator=torch.Generator().manual_seed(0))
    (images,) = run("VAEDecode", vctx, samples={"samples": latent}, vae=vae)
    with torch.inference_mode():
        expected = ((vae.vae.decode(latent).sample + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
    assert images.shape == (2, 48, 40, 3)
    np.testing.assert_allclose(images, expected.numpy(), atol=2e-5)  # one image at a time vs a batch

    pixels = np.random.default_rng(1).random((1, 53, 70, 4), dtype=np.float32)  # RGBA: alpha is dropped
    (encoded,) = run("VAEEncode", vctx, pixels=pixels, vae=vae)
    crop = torch.from_numpy(pixels[:, 2:50, 3:67, :3]).permute(0, 3, 1, 2) * 2 - 1
    with torch.inference_mode():
        mean = vae.vae.encode(crop).latent_dist.mean
    assert encoded["samples"].shape == (1, 4, 6, 8)
    torch.testing.assert_close(encoded["samples"], mean, atol=1e-6, rtol=1e-6)
    with pytest.raises(InvalidInput, match="smaller than 8x8"):
        run("VAEEncode", vctx, pixels=pixels[:, :7], vae=vae)
