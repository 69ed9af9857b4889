"""The sampler and scheduler names the engine implements, as ComfyUI spells them. Torch-free.

Flow install reads these to refuse a flow whose KSampler / KSamplerSelect / BasicScheduler names
something the engine cannot run; the sampling tables (``engine.sampling.samplers.SAMPLERS``,
``engine.sampling.schedulers.SCHEDULERS``) are checked against them by a test.
"""

from __future__ import annotations

SAMPLER_NAMES: tuple[str, ...] = (
    "euler",
    "euler_ancestral",
    "heun",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
)

SCHEDULER_NAMES: tuple[str, ...] = (
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
)

# Node inputs that carry a sampler or a scheduler name, whatever the node class (ComfyUI's
# KSampler, KSamplerAdvanced, KSamplerSelect, BasicScheduler and the node packs all spell them so).
SAMPLER_INPUT = "sampler_name"
SCHEDULER_INPUT = "scheduler"
