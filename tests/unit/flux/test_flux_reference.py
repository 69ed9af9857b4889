"""Flux's schedule, time/guidance embedding and latent packing agree with BFL's and ComfyUI's code.

``reference/flux_reference.json`` was produced by running black-forest-labs/flux's published
functions (``time_shift``, ``get_lin_function``, ``get_schedule``, ``timestep_embedding``, the
packing of ``prepare`` / ``prepare_fill``, ``unpack``) and ComfyUI's (``ModelSamplingFlux``,
``ModelSamplingDiscreteFlow``, the simple and normal schedulers, the ModelSamplingFlux node's
shift) beside the project; its ``_derivation`` says exactly which. Nothing in it comes from here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from visionatrix.engine.nets import flux_net
from visionatrix.engine.nodes.flux_conditioning import flux_shift
from visionatrix.engine.sampling import model_sampling, schedulers
from visionatrix.engine.sampling.conditioning import CondPart
from visionatrix.engine.sampling.latent_formats import FLUX
from visionatrix.testing import tiny_flux

REF = json.loads((Path(__file__).parent / "reference" / "flux_reference.json").read_text())


@pytest.mark.parametrize("key", sorted(k for k in REF["schedules"] if not k.endswith("percent")))
def test_schedules_are_comfyuis(key: str) -> None:
    parts = key.split("/")
    if parts[0] == "flux":
        ms, scheduler, steps = model_sampling.flux(float(parts[1])), parts[2], int(parts[3])
    else:
        ms, scheduler, steps = model_sampling.discrete_flow(1.0, 1.0), parts[1], int(parts[2])
    got = schedulers.calculate_sigmas(ms, scheduler, steps)
    assert got.dtype == torch.float32
    assert got.tolist() == REF["schedules"][key]  # bit for bit: the same float32 arithmetic


@pytest.mark.parametrize("shift", [1.15, 0.9])
def test_percent_to_sigma_is_comfyuis(shift: float) -> None:
    ms = model_sampling.flux(shift)
    got = [ms.percent_to_sigma(p) for p in (0.0, 0.25, 0.5, 0.9, 1.0)]
    assert got == pytest.approx(REF["schedules"][f"flux/{shift}/percent"], rel=1e-6)


def test_model_sampling_flux_shift_is_comfyuis_and_bfls_mu() -> None:
    for size, expected in REF["model_sampling_flux_shift"].items():
        width, height = (int(n) for n in size.split("x"))
        assert flux_shift(1.15, 0.5, width, height) == pytest.approx(expected, rel=1e-12)
    # BFL's mu for an image of ``seq`` 2x2 patches: the same line through (256, 0.5) and (4096, 1.15)
    for seq, mu in REF["bfl_mu"].items():
        assert flux_shift(1.15, 0.5, 16 * int(seq), 16) == pytest.approx(mu, rel=1e-12)


def test_flux_time_shift_is_bfls_schedule() -> None:
    for key, expected in REF["bfl_schedule"].items():
        steps, seq = (int(n) for n in key.split("/"))
        mu = flux_shift(1.15, 0.5, 16 * seq, 16)
        got = model_sampling.FluxSchedule(mu).sigma(torch.linspace(1, 0, steps + 1))
        assert got.tolist() == pytest.approx(expected, abs=1e-7)


def test_time_and_guidance_embeddings_are_bfls() -> None:
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    model = FluxTransformer2DModel(**tiny_flux.transformer_config())
    ref = REF["timestep_embedding"]
    values, expected = torch.tensor(ref["values"]), torch.tensor(ref["embedding"])
    # the net feeds diffusers' sinusoidal projection 1000·t in float32, as BFL's time_factor does
    got = model.time_text_embed.time_proj(values * 1000.0)
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-6)
    # and sums the timestep, guidance and pooled-text embeddings the way BFL's Flux.forward does
    net = flux_net.FluxNet(model.eval(), 16, 16, "cpu", torch.float32)
    extra = flux_net.FluxInputs(guidance=3.5, references=(), concat=None)
    pooled = torch.randn(1, tiny_flux.CLIP_WIDTH)
    embed = model.time_text_embed
    with torch.no_grad():
        vec = net._embed_time(torch.tensor([0.75]), [extra], 1, pooled)
        want = (
            embed.timestep_embedder(expected[1:2])
            + embed.guidance_embedder(expected[3:4])
            + embed.text_embedder(pooled)
        )
    torch.testing.assert_close(vec, want, rtol=1e-5, atol=1e-5)


def test_packing_and_ids_are_bfls() -> None:
    ref = REF["packing"]
    latent = torch.randn(*ref["latent_shape"], generator=torch.Generator().manual_seed(ref["latent_seed"]))
    tokens, ids = flux_net.pack(latent, 0, 0, 0)
    assert tokens[0].tolist() == ref["tokens"]
    assert ids.tolist() == ref["ids"]
    assert torch.equal(flux_net.unpack(tokens, 6, 10), latent) and ref["roundtrip_equal"]


def test_odd_sides_are_padded_and_cut_back() -> None:
    latent = torch.randn(1, 16, 5, 7)
    tokens, ids = flux_net.pack(latent, 0, 0, 0)
    assert tokens.shape == (1, 3 * 4, 64) and ids[-1].tolist() == [0.0, 2.0, 3.0]
    assert torch.equal(flux_net.unpack(tokens, 5, 7), latent)


def test_fill_mask_channels_are_bfls() -> None:
    ref = REF["fill_mask"]
    mask = (
        torch.rand(*ref["mask_shape"], generator=torch.Generator().manual_seed(ref["mask_seed"])) > 0.5
    ).float()
    latent_shape = torch.Size((1, 16, 6, 10))
    part = CondPart(
        torch.zeros(1, 1, 1), torch.zeros(1, 1), concat_latent=torch.zeros(latent_shape), concat_mask=mask
    )
    channels = flux_net.fill_channels(part, latent_shape, FLUX, 80, "cpu")
    assert channels.shape == (1, 80, 6, 10)
    assert channels[0, 16:].tolist() == ref["channels"]
    # the masked image's channels are its latent moved into the model's space
    torch.testing.assert_close(channels[0, :16], FLUX.process_in(torch.zeros(latent_shape))[0])
