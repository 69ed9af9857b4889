"""Noise as ComfyUI draws it.

- The starting noise comes from the CPU generator seeded with the task seed, drawn over the whole
  latent batch at once (``comfy.sample.prepare_noise``): a seed gives the same start on every device.
- Ancestral samplers draw their per-step noise from a *fresh* generator on the latent's device,
  seeded with the seed (plus one on the CPU), as k-diffusion's ``default_noise_sampler`` does in
  ComfyUI: so GPU runs match ComfyUI on a GPU, CPU runs match ComfyUI on the CPU.
- SDE samplers use a Brownian tree (torchsde) seeded with the seed, spanning the run's sigmas;
  the ``_gpu`` sampler variants build it on the latent's device, the others on the CPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

NoiseSampler = Callable[[Tensor, Tensor], Tensor]


def prepare_noise(latent: Tensor, seed: int) -> Tensor:
    """The starting noise for ``latent`` (any device): a CPU tensor of its shape and dtype."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randn(
        latent.size(), dtype=latent.dtype, layout=latent.layout, generator=generator, device="cpu"
    )


def default_noise_sampler(x: Tensor, seed: int | None) -> NoiseSampler:
    """Fresh unit noise shaped like ``x`` on each call, from one generator seeded for this run."""
    generator = None
    if seed is not None:
        generator = torch.Generator(device=x.device)
        generator.manual_seed(int(seed) + 1 if x.device.type == "cpu" else int(seed))

    def sample(sigma: Tensor, sigma_next: Tensor) -> Tensor:
        return torch.randn(x.size(), dtype=x.dtype, layout=x.layout, device=x.device, generator=generator)

    return sample


class BrownianTreeNoiseSampler:
    """Unit noise for the interval (sigma, sigma_next) from one Brownian path over the run's sigmas.

    The same path is queried at any resolution, so a step split in two sees consistent noise
    (what SDE solvers need). ``seed`` fixes the path.
    """

    def __init__(self, x: Tensor, sigma_min: Tensor, sigma_max: Tensor, seed: int | None, cpu: bool = True):
        import torchsde

        t0, t1 = torch.as_tensor(sigma_min), torch.as_tensor(sigma_max)
        self._sign = 1 if t0 < t1 else -1
        t0, t1 = (t0, t1) if t0 < t1 else (t1, t0)
        self._cpu = cpu
        w0 = torch.zeros_like(x)
        if cpu:
            t0, w0, t1 = t0.detach().cpu(), w0.detach().cpu(), t1.detach().cpu()
        entropy = int(seed) if seed is not None else int(torch.randint(0, 2**63 - 1, ()).item())
        self._tree = torchsde.BrownianTree(t0, w0, t1, entropy=entropy)

    def _increment(self, t0: Tensor, t1: Tensor) -> Tensor:
        sign = 1
        if not t0 < t1:
            t0, t1, sign = t1, t0, -1
        device, dtype = t0.device, t0.dtype
        if self._cpu:
            t0, t1 = t0.detach().cpu().float(), t1.detach().cpu().float()
        with warnings.catch_warnings():
            # float32 sigmas land a hair outside the float64 interval ends; torchsde clamps and warns
            warnings.filterwarnings("ignore", message="Should have t", category=UserWarning)
            w = torch.stack([self._tree(t0, t1)]).to(device=device, dtype=dtype) * (self._sign * sign)
        return w[0]

    def __call__(self, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        t0, t1 = torch.as_tensor(sigma), torch.as_tensor(sigma_next)
        return self._increment(t0, t1) / (t1 - t0).abs().sqrt()
