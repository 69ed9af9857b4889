"""The sampler table: ComfyUI's sampler names -> algorithms (``SAMPLER`` values of the graph).

``ddim`` is ComfyUI's alias of euler (its inpainting noise rule does not apply without a mask);
the ``_gpu`` SDE variants differ only in building the Brownian tree on the latent's device.
dpm_2, dpm_2_ancestral and the uni_pc pair *discard the penultimate sigma* when a KSampler
computes their schedule (they evaluate between sigmas, so ComfyUI schedules one step more).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from visionatrix.engine.sampling import ancestral, ode, sde, uni_pc
from visionatrix.engine.sampling.solver import Denoiser, SolverRun

SamplerFunction = Callable[[Denoiser, Tensor, Tensor, SolverRun], Tensor]


@dataclass(frozen=True)
class Sampler:
    """SAMPLER: a named algorithm plus the options ComfyUI's ``ksampler(name, extra_options)`` carries."""

    name: str
    function: SamplerFunction
    discard_penultimate_sigma: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def sample(self, model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
        run.options = {**run.options, **self.options}
        return self.function(model, x, sigmas, run)


_FUNCTIONS: dict[str, SamplerFunction] = {
    "euler": ode.sample_euler,
    "euler_ancestral": ancestral.sample_euler_ancestral,
    "heun": ode.sample_heun,
    "dpm_2": ode.sample_dpm_2,
    "dpm_2_ancestral": ancestral.sample_dpm_2_ancestral,
    "lms": ode.sample_lms,
    "dpmpp_2s_ancestral": ancestral.sample_dpmpp_2s_ancestral,
    "dpmpp_sde": sde.sample_dpmpp_sde,
    "dpmpp_sde_gpu": sde.sample_dpmpp_sde,
    "dpmpp_2m": ode.sample_dpmpp_2m,
    "dpmpp_2m_sde": sde.sample_dpmpp_2m_sde,
    "dpmpp_2m_sde_gpu": sde.sample_dpmpp_2m_sde,
    "dpmpp_3m_sde": sde.sample_dpmpp_3m_sde,
    "dpmpp_3m_sde_gpu": sde.sample_dpmpp_3m_sde,
    "ddpm": ancestral.sample_ddpm,
    "lcm": ancestral.sample_lcm,
    "ddim": ode.sample_euler,
    "uni_pc": uni_pc.sample_uni_pc,
    "uni_pc_bh2": uni_pc.sample_uni_pc_bh2,
}
_DISCARD_PENULTIMATE = frozenset({"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"})


def _make(name: str) -> Sampler:
    options = {"noise_on_device": True} if name.endswith("_gpu") else {}
    return Sampler(name, _FUNCTIONS[name], name in _DISCARD_PENULTIMATE, options)


SAMPLERS: dict[str, Sampler] = {name: _make(name) for name in _FUNCTIONS}
