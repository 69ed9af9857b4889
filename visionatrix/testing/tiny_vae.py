"""A tiny randomly initialised SD/SDXL VAE in the layout of Stability's ``sdxl_vae.safetensors``.

The published file holds the autoencoder alone under its original names, without the
checkpoint's ``first_stage_model.`` prefix (``encoder.down.0.block.0.conv1.weight``, attention as
1×1 convolutions), in float32. This one has exactly those names — four levels, two resnets per
encoder level and three per decoder level, the mid-block attention — only 4–16 channels wide, so it
loads through the code that loads the 335 MB file.
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_sd_vae(path: Path, seed: int = 0) -> Path:
    """Write the tiny VAE to ``path``; the same ``seed`` gives the same file."""
    import torch
    from safetensors.torch import save_file

    from visionatrix.engine.nets import sdxl_keys as keys
    from visionatrix.engine.nets.sdxl_loader import construct
    from visionatrix.testing.tiny_sdxl import original_tensors, tiny_configs

    config = tiny_configs("lean")["vae"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = construct("vae", config)
    tensors = original_tensors(module, lambda key: keys.vae_source(key, config, prefix=""))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, str(path))
    return path
