"""The sampler and scheduler names (ComfyUI's spelling) this engine implements. Torch-free.

The API process reads these to refuse, at install, a flow whose ``KSampler``-style nodes name a
sampler or scheduler the engine cannot run; the sampling nodes run exactly these. A name added
to the engine's sampler table is added here in the same change (a test holds the two equal).
"""

from __future__ import annotations

SAMPLER_NAMES: tuple[str, ...] = ("euler", "euler_ancestral", "dpmpp_2m")
SCHEDULER_NAMES: tuple[str, ...] = ("normal", "karras", "exponential", "sgm_uniform", "simple")

# Node inputs that carry a sampler or a scheduler name, whatever the node class (ComfyUI's
# KSampler, KSamplerAdvanced, KSamplerSelect, BasicScheduler and the node packs all spell them so).
SAMPLER_INPUT = "sampler_name"
SCHEDULER_INPUT = "scheduler"
