"""Diffusion sampling as ComfyUI does it: model sampling, schedulers, samplers, guidance, noise.

    model_sampling   how a model sees noise: sigma <-> timestep, input scaling, prediction type
    latent_formats   the VAE latent <-> model latent mapping (SDXL, Playground v2.5)
    schedulers       the sigmas a run visits (ComfyUI's scheduler names, Align Your Steps)
    noise            starting noise and the per-step noise of ancestral / SDE samplers
    samplers         the sampler table; ode / ancestral / sde / uni_pc hold the algorithms
    guidance         conditioning entries, classifier-free guidance, the UNet batch
    run              one sampling run: noise scaling, sampler, cancel and progress

Everything here is torch code imported only by node ``run`` methods (the API process never loads
it). Sigmas are float32 tensors and sampler arithmetic runs on tensors, as in ComfyUI, so a seed
gives ComfyUI's image up to float noise. ``docs/fidelity.md`` lists what matches and what does not.
"""
