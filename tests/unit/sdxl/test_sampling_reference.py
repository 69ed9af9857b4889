"""Sampling reproduces ComfyUI: numbers pinned from ComfyUI's own functions, not from ours.

``reference/comfyui_sampling.json`` was produced by running ComfyUI's sampling code (its schedulers,
``ModelSamplingDiscrete``, k-diffusion samplers, UniPC, ``prepare_noise``, ``default_noise_sampler``,
the Brownian-tree noise sampler, Align Your Steps, prompt-weight parsing and window packing) copied
beside the project, outside it (its ``_derivation`` field says exactly what). The sampler cases ran a
whole KSampler pass the ComfyUI way on a *toy denoiser* (``_toy_output`` below, the same formula on
both sides): a zero latent (1, 4, 3, 5), seed 42, the starting noise from ``prepare_noise``, the
KSampler sigma rules, ``noise_scaling`` with ``max_denoise``, then the sampler function, whose
output is pinned. A match means schedule, noise, timestep mapping and solver all agree with ComfyUI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchsde")

from visionatrix.engine import sampling_names  # noqa: E402
from visionatrix.engine.nets import prompt_weights  # noqa: E402
from visionatrix.engine.sampling import model_sampling as ms_module  # noqa: E402
from visionatrix.engine.sampling import noise, schedulers  # noqa: E402
from visionatrix.engine.sampling.samplers import SAMPLERS  # noqa: E402
from visionatrix.engine.sampling.solver import SolverRun  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "reference" / "comfyui_sampling.json").read_text())
EPS = ms_module.discrete()
EDM = ms_module.continuous_edm(0.002, 120.0, "edm", 0.5)  # ModelSamplingContinuousEDM(edm_playground_v2.5)


def _close(got: Any, expected: list[float], rel: float = 1e-6) -> None:
    got_t = torch.as_tensor(got, dtype=torch.float64).flatten()
    want = torch.tensor(expected, dtype=torch.float64)
    assert got_t.shape == want.shape
    scale = max(float(want.abs().max()), 1e-12)
    assert float((got_t - want).abs().max()) / scale <= rel, (got_t.tolist(), expected)


@pytest.mark.parametrize("case", sorted(REFERENCE["schedulers"]))
def test_scheduler_sigmas_and_unet_timesteps(case: str) -> None:
    """Every scheduler at 4, 8 and 20 steps; the timesteps are what the UNet is given (nearest integer)."""
    name, steps = case.split("/")
    expected = REFERENCE["schedulers"][case]
    sigmas = schedulers.calculate_sigmas(EPS, name, int(steps))
    _close(sigmas, expected["sigmas"], rel=0)
    assert EPS.timestep(sigmas[:-1]).tolist() == expected["timesteps"]


def test_sgm_uniform_spaces_timesteps_continuously_and_maps_to_comfyuis_unet_timesteps() -> None:
    sigmas = schedulers.sgm_uniform(EPS, 4)
    # 999, 749.25, 499.5, 249.75 read as sigmas, then the nearest training timestep: ComfyUI's 500 and 250
    assert EPS.timestep(sigmas[:-1]).tolist() == [999, 749, 500, 250]
    assert float(sigmas[1]) == pytest.approx(float(EPS.sigma(torch.tensor(749.25))), rel=1e-7)


@pytest.mark.parametrize("case", sorted(REFERENCE["edm_schedulers"]))
def test_edm_schedules_and_timesteps(case: str) -> None:
    name, steps = case.split("/")
    expected = REFERENCE["edm_schedulers"][case]
    sigmas = schedulers.calculate_sigmas(EDM, name, int(steps))
    _close(sigmas, expected["sigmas"], rel=0)
    _close(EDM.timestep(sigmas[:-1]), expected["timesteps"], rel=0)


def test_ksampler_denoise_and_discarded_penultimate_sigma() -> None:
    ref = REFERENCE["ksampler_sigmas"]
    _close(schedulers.ksampler_sigmas(EPS, "normal", 4, 0.5), ref["normal/4/denoise0.5"], rel=0)
    # denoise above 0.9999 counts as full, as in ComfyUI
    _close(schedulers.ksampler_sigmas(EPS, "karras", 5, 0.99995), ref["karras/5/denoise0.99995"], rel=0)
    _close(
        schedulers.ksampler_sigmas(EPS, "karras", 4, discard_penultimate=True), ref["karras/4/dpm_2"], rel=0
    )


def test_align_your_steps_and_percent_to_sigma() -> None:
    for case, expected in REFERENCE["ays"].items():
        model_type, steps, denoise = case.split("/")
        _close(schedulers.align_your_steps(model_type, int(steps), float(denoise)), expected, rel=0)
    for percent, sigma in REFERENCE["percent_to_sigma"].items():
        assert EPS.percent_to_sigma(float(percent)) == pytest.approx(sigma, rel=1e-7)
    for percent, sigma in REFERENCE["edm_percent_to_sigma"].items():
        assert EDM.percent_to_sigma(float(percent)) == pytest.approx(sigma, rel=1e-6)


def test_initial_ancestral_and_brownian_noise_for_a_seed() -> None:
    ref = REFERENCE["initial_noise"]
    x = torch.zeros(ref["shape"])
    _close(noise.prepare_noise(x, ref["seed"]), ref["values"], rel=0)
    ancestral = REFERENCE["ancestral_noise"]
    draw = noise.default_noise_sampler(x, ancestral["seed"])
    for expected in ancestral["draws"]:
        _close(draw(torch.tensor(1.0), torch.tensor(0.5)), expected, rel=0)
    brownian = REFERENCE["brownian_noise"]
    tree = noise.BrownianTreeNoiseSampler(x, torch.tensor(0.03), torch.tensor(14.6), seed=brownian["seed"])
    for (a, b), expected in zip(brownian["intervals"], brownian["values"], strict=True):
        _close(tree(torch.tensor(a), torch.tensor(b)), expected, rel=1e-6)


def _toy_output(xc: Any, t: Any) -> Any:
    """A smooth, channel- and timestep-dependent stand-in for a UNet's noise prediction."""
    tt = t.float().view(-1, 1, 1, 1) / 1000
    ch = torch.arange(xc.shape[1], dtype=xc.dtype).view(1, -1, 1, 1)
    return torch.tanh(xc * (0.6 + 0.3 * tt) + 0.1 * ch) * 0.9 + 0.05 * xc


def _toy_run(ms: ms_module.ModelSampling, sampler: str, scheduler: str, steps: int, seed: int) -> Any:
    latent = torch.zeros(1, 4, 3, 5)
    chosen = SAMPLERS[sampler]
    sigmas = schedulers.ksampler_sigmas(ms, scheduler, steps, 1.0, chosen.discard_penultimate_sigma)
    x = ms.noise_scaling(sigmas[0], noise.prepare_noise(latent, seed), latent, ms.is_max_denoise(sigmas))

    def model(x: Any, sigma: Any) -> Any:
        return ms.calculate_denoised(sigma, _toy_output(ms.calculate_input(sigma, x), ms.timestep(sigma)), x)

    return chosen.sample(model, x, sigmas, SolverRun(ms, seed))


@pytest.mark.parametrize("case", sorted(REFERENCE["samplers"]))
def test_sampler_run_matches_comfyui(case: str) -> None:
    name, scheduler, steps = case.split("/")
    _close(_toy_run(EPS, name, scheduler, int(steps), seed=42), REFERENCE["samplers"][case], rel=1e-6)


@pytest.mark.parametrize("case", sorted(REFERENCE["edm_samplers"]))
def test_edm_sampler_run_matches_comfyui(case: str) -> None:
    name, scheduler, steps = case.split("/")
    _close(_toy_run(EDM, name, scheduler, int(steps), seed=7), REFERENCE["edm_samplers"][case], rel=1e-6)


def test_gpu_variants_and_ddim_are_their_base_samplers_on_the_cpu() -> None:
    base = _toy_run(EPS, "dpmpp_2m_sde", "karras", 4, seed=42)
    assert torch.equal(_toy_run(EPS, "dpmpp_2m_sde_gpu", "karras", 4, seed=42), base)
    assert torch.equal(
        _toy_run(EPS, "ddim", "karras", 4, seed=42), _toy_run(EPS, "euler", "karras", 4, seed=42)
    )


@pytest.mark.parametrize("prompt", sorted(REFERENCE["token_weights"]))
def test_prompt_weights_parse_as_comfyui(prompt: str) -> None:
    assert [list(p) for p in prompt_weights.parse(prompt)] == REFERENCE["token_weights"][prompt]


@pytest.mark.parametrize("case", sorted(REFERENCE["token_windows"]))
def test_token_windows_pack_as_comfyui(case: str) -> None:
    pytest.importorskip("transformers")
    from visionatrix.engine.nets.sdxl_text import tokenize_with_weights

    ref = REFERENCE["token_windows"][case]
    for key, name in (("l", "tokenizer"), ("g", "tokenizer_2")):
        windows = tokenize_with_weights(ref["text"], name)
        assert [[list(p) for p in w] for w in windows] == ref[key]


def test_tables_match_the_torch_free_name_lists() -> None:
    assert tuple(SAMPLERS) == sampling_names.SAMPLER_NAMES
    assert tuple(schedulers.SCHEDULERS) == sampling_names.SCHEDULER_NAMES
