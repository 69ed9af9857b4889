"""Tensor names: diffusers' ``FluxTransformer2DModel`` ↔ the BFL / ComfyUI single-file Flux layout.

Written down one way, as ``sdxl_keys`` does: for each diffusers parameter, where it comes from in
the published file (``double_blocks.N.img_attn.qkv.weight``, ``single_blocks.N.linear1.weight``,
``final_layer.adaLN_modulation.1.weight``...), so the loader can read tensor by tensor (a 24 GB file
never sits in memory twice) and the tiny-model writer can run it backwards. It is the mapping
diffusers' ``convert_flux_transformer_checkpoint_to_diffusers`` applies, with the widths taken from
the file instead of the published model's constants (``tests/unit/flux/test_flux_keys.py`` checks
the two agree). Pure string work, no torch.

A file may carry ComfyUI's checkpoint prefix ``model.diffusion_model.``; ``strip_prefix`` removes it.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECKPOINT_PREFIX = "model.diffusion_model."


@dataclass(frozen=True)
class Source:
    """Where one diffusers parameter lives in the BFL file and how to turn it into the parameter."""

    key: str
    # "copy"; "rows": rows [start, stop) of a fused tensor (q/k/v, single blocks' q/k/v/mlp);
    # "swap": the two halves exchanged (BFL's final modulation is shift, scale; diffusers' scale, shift)
    op: str = "copy"
    start: int = 0
    stop: int = 0


@dataclass(frozen=True)
class FluxShape:
    """What the mapping needs to know about a transformer: its width and depths."""

    hidden: int  # 3072 for Flux.1
    double_blocks: int  # 19
    single_blocks: int  # 38
    guidance: bool  # dev / Kontext / Fill have a guidance embedder, schnell has none
    mlp_ratio: float = 4.0

    @property
    def mlp_hidden(self) -> int:
        return int(self.hidden * self.mlp_ratio)


def strip_prefix(name: str) -> str:
    return name[len(CHECKPOINT_PREFIX) :] if name.startswith(CHECKPOINT_PREFIX) else name


def _linear(target: str, source: str) -> dict[str, Source]:
    return {f"{target}.weight": Source(f"{source}.weight"), f"{target}.bias": Source(f"{source}.bias")}


def _mlp_embedder(target: str, source: str) -> dict[str, Source]:
    return {
        **_linear(f"{target}.linear_1", f"{source}.in_layer"),
        **_linear(f"{target}.linear_2", f"{source}.out_layer"),
    }


def _rows(targets: list[tuple[str, int]], source: str) -> dict[str, Source]:
    """Consecutive row ranges of ``source`` (weight and bias) into ``targets`` (name, row count)."""
    out: dict[str, Source] = {}
    start = 0
    for target, rows in targets:
        for kind in ("weight", "bias"):
            out[f"{target}.{kind}"] = Source(f"{source}.{kind}", "rows", start, start + rows)
        start += rows
    return out


def _double_block(i: int, hidden: int) -> dict[str, Source]:
    t, s = f"transformer_blocks.{i}.", f"double_blocks.{i}."
    qkv = [("to_q", hidden), ("to_k", hidden), ("to_v", hidden)]
    added = [("add_q_proj", hidden), ("add_k_proj", hidden), ("add_v_proj", hidden)]
    return {
        **_linear(f"{t}norm1.linear", f"{s}img_mod.lin"),
        **_linear(f"{t}norm1_context.linear", f"{s}txt_mod.lin"),
        **_rows([(f"{t}attn.{name}", n) for name, n in qkv], f"{s}img_attn.qkv"),
        **_rows([(f"{t}attn.{name}", n) for name, n in added], f"{s}txt_attn.qkv"),
        f"{t}attn.norm_q.weight": Source(f"{s}img_attn.norm.query_norm.scale"),
        f"{t}attn.norm_k.weight": Source(f"{s}img_attn.norm.key_norm.scale"),
        f"{t}attn.norm_added_q.weight": Source(f"{s}txt_attn.norm.query_norm.scale"),
        f"{t}attn.norm_added_k.weight": Source(f"{s}txt_attn.norm.key_norm.scale"),
        **_linear(f"{t}ff.net.0.proj", f"{s}img_mlp.0"),
        **_linear(f"{t}ff.net.2", f"{s}img_mlp.2"),
        **_linear(f"{t}ff_context.net.0.proj", f"{s}txt_mlp.0"),
        **_linear(f"{t}ff_context.net.2", f"{s}txt_mlp.2"),
        **_linear(f"{t}attn.to_out.0", f"{s}img_attn.proj"),
        **_linear(f"{t}attn.to_add_out", f"{s}txt_attn.proj"),
    }


def _single_block(i: int, hidden: int, mlp_hidden: int) -> dict[str, Source]:
    t, s = f"single_transformer_blocks.{i}.", f"single_blocks.{i}."
    fused = [(f"{t}attn.to_q", hidden), (f"{t}attn.to_k", hidden), (f"{t}attn.to_v", hidden)]
    return {
        **_linear(f"{t}norm.linear", f"{s}modulation.lin"),
        **_rows([*fused, (f"{t}proj_mlp", mlp_hidden)], f"{s}linear1"),
        f"{t}attn.norm_q.weight": Source(f"{s}norm.query_norm.scale"),
        f"{t}attn.norm_k.weight": Source(f"{s}norm.key_norm.scale"),
        **_linear(f"{t}proj_out", f"{s}linear2"),
    }


def transformer_sources(shape: FluxShape) -> dict[str, Source]:
    """Every parameter of a diffusers ``FluxTransformer2DModel`` of ``shape`` -> its BFL source."""
    out = {
        **_mlp_embedder("time_text_embed.timestep_embedder", "time_in"),
        **_mlp_embedder("time_text_embed.text_embedder", "vector_in"),
        **_linear("context_embedder", "txt_in"),
        **_linear("x_embedder", "img_in"),
    }
    if shape.guidance:
        out.update(_mlp_embedder("time_text_embed.guidance_embedder", "guidance_in"))
    for i in range(shape.double_blocks):
        out.update(_double_block(i, shape.hidden))
    for i in range(shape.single_blocks):
        out.update(_single_block(i, shape.hidden, shape.mlp_hidden))
    out.update(_linear("proj_out", "final_layer.linear"))
    for kind in ("weight", "bias"):
        out[f"norm_out.linear.{kind}"] = Source(f"final_layer.adaLN_modulation.1.{kind}", "swap")
    return out
