"""RemoteVAEDecode against a real loopback server speaking the remote-VAE protocol, and locally."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from tests.unit.flux.conftest import VAE, run
from visionatrix.engine.context import NodeContext
from visionatrix.engine.nodes.flux import VAE_FOLDER, load_vae
from visionatrix.engine.nodes.remote_vae import endpoints_from
from visionatrix.errors import InvalidInput, VixError
from visionatrix.testing.remote_vae_server import RemoteVaeServer


@pytest.fixture
def server(ctx: NodeContext) -> Iterator[RemoteVaeServer]:
    vae = load_vae(ctx, ctx.models.path(VAE_FOLDER, VAE))

    def decode(latent: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return vae.vae.decode(latent).sample

    s = RemoteVaeServer(decode)
    s.start()
    yield s
    s.stop()


def _latent() -> dict[str, torch.Tensor]:
    return {"samples": torch.randn(2, 16, 6, 5, generator=torch.Generator().manual_seed(3))}


def test_the_remote_decoder_gets_the_protocol_and_its_images_come_back(
    ctx: NodeContext, server: RemoteVaeServer
) -> None:
    samples = _latent()
    ctx.env.options["remote_vae"] = {"Flux": server.url + "/"}
    (remote,) = run("RemoteVAEDecode", ctx, samples=samples, vae_type="Flux")
    (local,) = run("VAEDecode", ctx, samples=samples, vae=load_vae(ctx, ctx.models.path(VAE_FOLDER, VAE)))
    assert remote.shape == (2, 48, 40, 3)
    np.testing.assert_allclose(remote, local, atol=1e-6)  # the same VAE on both ends: the same pixels
    assert len(server.requests) == 2  # one image per request, as the node pack sends them
    query = server.requests[0]["query"]
    assert query["shape"] == ["1", "16", "6", "5"] and query["dtype"] == ["float32"]
    assert (query["height"], query["width"], query["do_scaling"]) == (["48"], ["40"], ["False"])
    assert server.requests[0]["headers"]["Accept"] == "tensor/binary"


def test_without_a_remote_decoder_a_flux_latent_is_decoded_here(ctx: NodeContext) -> None:
    samples = _latent()
    (image,) = run("RemoteVAEDecode", ctx, samples=samples, vae_type="Flux")
    (local,) = run("VAEDecode", ctx, samples=samples, vae=load_vae(ctx, ctx.models.path(VAE_FOLDER, VAE)))
    np.testing.assert_array_equal(image, local)


def test_a_failing_endpoint_is_a_clear_error(ctx: NodeContext, server: RemoteVaeServer) -> None:
    server.fail = True
    ctx.env.options["remote_vae"] = {"Flux": server.url}
    with pytest.raises(VixError, match="refused: HTTP 503"):
        run("RemoteVAEDecode", ctx, samples=_latent(), vae_type="Flux")


def test_an_unreachable_endpoint_and_unknown_types_are_named(ctx: NodeContext) -> None:
    ctx.env.options["remote_vae"] = {"Flux": "http://127.0.0.1:9/"}
    with pytest.raises(VixError, match="did not answer"):
        run("RemoteVAEDecode", ctx, samples=_latent(), vae_type="Flux")
    with pytest.raises(InvalidInput, match="vae_type"):
        run("RemoteVAEDecode", ctx, samples=_latent(), vae_type="SDXL")
    ctx.env.options["remote_vae"] = {}
    with pytest.raises(InvalidInput, match="VIX_REMOTE_VAE_HUNYUANVIDEO"):
        run("RemoteVAEDecode", ctx, samples=_latent(), vae_type="HunyuanVideo")


def test_the_worker_reads_its_endpoints_from_the_environment() -> None:
    assert endpoints_from({"VIX_REMOTE_VAE_FLUX": " http://vae/ ", "OTHER": "x"}) == {"Flux": "http://vae/"}
    assert endpoints_from({"VIX_REMOTE_VAE_FLUX": ""}) == {}
