"""RemoteVAEDecode (Visionatrix/ComfyUI-RemoteVAE): decode latents on a Hugging Face "hybrid inference"
VAE endpoint, or here when none is configured.

    RemoteVAEDecode(samples, vae_type)  -> (IMAGE,)     vae_type: Flux, HunyuanVideo

The endpoint for a type comes from the worker's ``VIX_REMOTE_VAE_FLUX`` / ``VIX_REMOTE_VAE_HUNYUANVIDEO``
(``RunEnv.options["remote_vae"]``). Wire protocol (diffusers' ``remote_decode``, as the node pack
speaks it): ``POST`` the latent's raw little-endian bytes (``Content-Type: tensor/binary``) with
query parameters ``do_scaling=False``, ``output_type=pt``, ``partial_postprocess=False``,
``shape`` (repeated, one per dimension), ``dtype``, ``height``, ``width`` (pixels, 8 per latent
cell); the answer's body is the image tensor's raw bytes in [-1, 1], its ``dtype`` and ``shape``
(JSON) in headers. Latents are sent unscaled (the VAE's own space), as ComfyUI holds them.

With no endpoint configured a Flux latent is decoded locally with the Flux VAE
(``vae/ae.safetensors``, the file every Flux flow loads anyway, shared through the model cache).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput, VixError

if TYPE_CHECKING:
    import torch

VAE_TYPES = ("Flux", "HunyuanVideo")
ENV_VARIABLES = {"Flux": "VIX_REMOTE_VAE_FLUX", "HunyuanVideo": "VIX_REMOTE_VAE_HUNYUANVIDEO"}
LOCAL_FLUX_VAE = "ae.safetensors"
TIMEOUT = 300.0
_DTYPES = ("float16", "float32", "bfloat16", "uint8")


def endpoints_from(environ: dict[str, str]) -> dict[str, str]:
    """The remote decoders a worker's environment configures, by ``vae_type``."""
    return {t: environ[v].strip() for t, v in ENV_VARIABLES.items() if environ.get(v, "").strip()}


def remote_decode(url: str, latents: torch.Tensor, timeout: float = TIMEOUT) -> torch.Tensor:
    """The endpoint's decoded images for ``latents`` (B, C, h, w): (B, 3, 8h, 8w) in [-1, 1]."""
    import httpx
    import torch

    latents = latents.detach().to("cpu").contiguous()
    dtype = str(latents.dtype).removeprefix("torch.")
    params: list[tuple[str, str | int]] = [
        ("do_scaling", "False"),
        ("output_type", "pt"),
        ("partial_postprocess", "False"),
        *(("shape", int(n)) for n in latents.shape),
        ("dtype", dtype),
        ("height", latents.shape[2] * 8),
        ("width", latents.shape[3] * 8),
    ]
    body = latents.view(torch.uint8).numpy().tobytes() if dtype == "bfloat16" else latents.numpy().tobytes()
    headers = {"Content-Type": "tensor/binary", "Accept": "tensor/binary"}
    try:
        answer = httpx.post(url, params=params, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise VixError(f"RemoteVAEDecode: the remote VAE at {url} did not answer: {exc}") from exc
    if answer.status_code != 200:
        raise VixError(
            f"RemoteVAEDecode: the remote VAE at {url} refused: HTTP {answer.status_code} {answer.text[:300]}"
        )
    return _tensor_from(answer, url)


def _tensor_from(answer: Any, url: str) -> torch.Tensor:
    import torch

    try:
        dtype = answer.headers["dtype"]
        shape = [int(n) for n in json.loads(answer.headers["shape"])]
        if dtype not in _DTYPES:
            raise ValueError(f"dtype {dtype!r}")
        data = bytearray(answer.content)
        out = torch.frombuffer(data, dtype=getattr(torch, dtype)).reshape(shape)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise VixError(f"RemoteVAEDecode: the remote VAE at {url} sent no image tensor ({exc})") from exc
    if out.ndim != 4 or out.shape[1] != 3:
        raise VixError(f"RemoteVAEDecode: the remote VAE at {url} sent shape {shape}, not (B, 3, H, W)")
    return out.float()


@node("RemoteVAEDecode")
class RemoteVAEDecode:
    def run(self, ctx: NodeContext, samples: dict[str, Any], vae_type: str = "Flux") -> tuple[np.ndarray]:
        if vae_type not in VAE_TYPES:
            raise InvalidInput(f"RemoteVAEDecode: vae_type {vae_type!r} is not one of {', '.join(VAE_TYPES)}")
        url = (ctx.env.options.get("remote_vae") or {}).get(vae_type)
        latents = samples["samples"]
        if url:
            images = []
            for i in range(latents.shape[0]):
                ctx.progress(i / latents.shape[0])
                images.append(remote_decode(url, latents[i : i + 1]))
            import torch

            decoded = (torch.cat(images) * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
            return (decoded.numpy().astype(np.float32),)
        if vae_type != "Flux":
            raise InvalidInput(
                f"RemoteVAEDecode: no remote decoder for {vae_type} is configured "
                f"({ENV_VARIABLES[vae_type]}) and it has no local decoder here"
            )
        return _decode_locally(ctx, samples)


def _decode_locally(ctx: NodeContext, samples: dict[str, Any]) -> tuple[np.ndarray]:
    from visionatrix.engine.nodes.flux import VAE_FOLDER, load_vae
    from visionatrix.engine.registry import lookup

    vae = load_vae(ctx, ctx.models.path(VAE_FOLDER, LOCAL_FLUX_VAE))
    decode = lookup("VAEDecode")
    assert decode is not None
    return decode().run(ctx, samples, vae)
