"""The BFL -> diffusers name table is diffusers' own conversion, read tensor by tensor."""

from __future__ import annotations

import torch
from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

from visionatrix.engine.nets import flux_keys, weights


def test_the_table_agrees_with_diffusers_converter() -> None:
    """diffusers' converter hard-codes the published width (3072, MLP 12288), so the check uses
    tensors with those row counts (and 2 columns: shapes are all the converter reads)."""
    hidden, mlp = 3072, 12288
    shape = flux_keys.FluxShape(hidden=hidden, double_blocks=2, single_blocks=2, guidance=True)
    sources = flux_keys.transformer_sources(shape)
    rows = {"img_attn.qkv": 3 * hidden, "txt_attn.qkv": 3 * hidden, "linear1": 3 * hidden + mlp}
    generator = torch.Generator().manual_seed(0)
    bfl: dict[str, torch.Tensor] = {}
    for source in sources.values():
        n = next((r for part, r in rows.items() if f".{part}." in source.key), 4)
        if source.key.endswith(".bias"):
            bfl[source.key] = torch.randn(n, generator=generator)
        else:
            bfl[source.key] = torch.randn(n, 2, generator=generator)
    expected = convert_flux_transformer_checkpoint_to_diffusers(dict(bfl))

    class Handle:
        def get_tensor(self, name: str) -> torch.Tensor:
            return bfl[name]

        def get_slice(self, name: str) -> torch.Tensor:
            return bfl[name]

    assert set(expected) == set(sources)
    for name, source in sources.items():
        got = weights.read_tensor(Handle(), weights.Read(source.key, source.op, source.start, source.stop))
        assert torch.equal(got, expected[name]), name
