"""The Flux transformer as the sampler calls it: latents in, velocity out, ComfyUI's conventions.

``FluxNet`` wraps diffusers' ``FluxTransformer2DModel`` and does what ComfyUI's ``comfy/ldm/flux``
model and ``model_base.Flux`` do around the blocks:

- the latent is padded to even sides (circularly) and packed into 2×2 patches, 64 features a
  token; image tokens get position ids (0, row, column), text tokens (0, 0, 0);
- Kontext reference latents (``ReferenceLatent``) are packed the same way and appended to the
  image tokens with index 1 and ComfyUI's "offset" placement; only the image tokens' output is kept;
- Fill models (96 input channels) read the masked image's latent and the mask, unshuffled to 64
  channels, concatenated to the noisy latent (``condition``, once per run);
- the timestep and the distilled guidance (3.5 unless FluxGuidance says otherwise) are embedded
  from float32 values (diffusers' own forward rounds them to the compute dtype first), then the
  CLIP-L pooled vector is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from visionatrix.engine.sampling.conditioning import CondPart
    from visionatrix.engine.sampling.diffusion_model import UNetBatch
    from visionatrix.engine.sampling.latent_formats import LatentFormat

DEFAULT_GUIDANCE = 3.5  # ComfyUI's Flux.extra_conds default when no FluxGuidance set one
PATCH = 2


@dataclass(frozen=True, eq=False)
class FluxInputs:
    """One conditioning entry's own model inputs, on the model's device."""

    guidance: float | None
    references: tuple[Tensor, ...]  # model latent space, (B, 16, h, w)
    concat: Tensor | None  # Fill's extra channels, (B, 80, H, W)

    def batches_with(self, other: FluxInputs) -> bool:
        """Whether both entries can share one transformer call (same token layout)."""
        return (
            (self.guidance is None) == (other.guidance is None)
            and [r.shape for r in self.references] == [r.shape for r in other.references]
            and (None if self.concat is None else self.concat.shape)
            == (None if other.concat is None else other.concat.shape)
        )


class FluxNet:
    """The transformer plus what the sampler needs to call it (``DiffusionModel.unet``)."""

    def __init__(
        self, transformer: Any, in_channels: int, out_channels: int, device: str, dtype: torch.dtype
    ):
        self.transformer = transformer
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.guidance_embeds = bool(transformer.config.guidance_embeds)
        self.device = device
        self.dtype = dtype
        self._rotary_cache: dict[Any, tuple[Tensor, Tensor]] = {}

    # -- once per sampling run, per conditioning entry -------------------------------------------

    def condition(self, part: CondPart, noise_shape: torch.Size, fmt: LatentFormat) -> FluxInputs:
        import torch

        guidance = None
        if self.guidance_embeds:
            guidance = DEFAULT_GUIDANCE if part.guidance is None else float(part.guidance)
        refs = tuple(
            fmt.process_in(r.to(self.device, torch.float32)).to(self.dtype) for r in part.reference_latents
        )
        concat = None
        if self.in_channels > self.out_channels:
            concat = fill_channels(part, noise_shape, fmt, self.in_channels - self.out_channels, self.device)
        return FluxInputs(guidance, refs, concat)

    # -- every model call ---------------------------------------------------------------------

    def apply_batch(self, x: Tensor, t: Tensor, batch: UNetBatch) -> Tensor:
        import torch

        extras: list[FluxInputs] = list(batch.extras) or [FluxInputs(None, (), None)]
        rows = x.shape[0] // len(extras)
        if extras[0].concat is not None:
            concat = torch.cat([_rows(e.concat, rows) for e in extras if e.concat is not None])
            x = torch.cat([x, concat.to(x.dtype)], dim=1)
        height, width = x.shape[-2:]
        img, img_ids = pack(x, 0, 0, 0)
        image_tokens = img.shape[1]
        for ref, ref_ids in _references(extras, rows):
            img = torch.cat([img, ref], dim=1)
            img_ids = torch.cat([img_ids, ref_ids], dim=0)
        m = self.transformer
        hidden = m.x_embedder(img.to(self.dtype))
        context = m.context_embedder(batch.embeds.to(self.dtype))
        temb = self._embed_time(t, extras, rows, batch.pooled)
        rotary = self._rotary(context.shape[1], img_ids.to(x.device))
        for block in m.transformer_blocks:
            context, hidden = block(
                hidden_states=hidden, encoder_hidden_states=context, temb=temb, image_rotary_emb=rotary
            )
        for block in m.single_transformer_blocks:
            context, hidden = block(
                hidden_states=hidden, encoder_hidden_states=context, temb=temb, image_rotary_emb=rotary
            )
        out = m.proj_out(m.norm_out(hidden, temb))[:, :image_tokens]
        return unpack(out, height, width)

    def _rotary(self, text_tokens: int, img_ids: Tensor) -> tuple[Tensor, Tensor]:
        """RoPE tables for text tokens (ids 0) then ``img_ids``; the same at every step of a run, so
        the last few are kept (their cos/sin in float64 cost as much as a tiny model's blocks)."""
        import torch

        key = (text_tokens, img_ids.shape[0], img_ids.device, hash(img_ids.cpu().numpy().tobytes()))
        found = self._rotary_cache.get(key)
        if found is None:
            txt_ids = torch.zeros((text_tokens, 3), device=img_ids.device, dtype=torch.float32)
            found = self.transformer.pos_embed(torch.cat([txt_ids, img_ids], dim=0))
            self._rotary_cache = {**dict(list(self._rotary_cache.items())[-3:]), key: found}
        return found

    def _embed_time(self, t: Tensor, extras: list[FluxInputs], rows: int, pooled: Tensor) -> Tensor:
        import torch

        embed = self.transformer.time_text_embed
        vec = embed.timestep_embedder(embed.time_proj(t.float() * 1000.0).to(self.dtype))
        if self.guidance_embeds:
            g = [e.guidance if e.guidance is not None else DEFAULT_GUIDANCE for e in extras]
            scale = torch.tensor(g, device=t.device, dtype=torch.float32).repeat_interleave(rows)
            vec = vec + embed.guidance_embedder(embed.time_proj(scale * 1000.0).to(self.dtype))
        return vec + embed.text_embedder(pooled.to(self.dtype))


def pack(x: Tensor, index: int, h_offset: int, w_offset: int) -> tuple[Tensor, Tensor]:
    """(B, C, H, W) -> tokens (B, ceil(H/2)·ceil(W/2), 4C) and their position ids (tokens, 3).

    Odd sides are padded circularly as ComfyUI's ``pad_to_patch_size`` does; offsets are in latent
    pixels and become token offsets rounded to the nearest patch.
    """
    import torch

    b, c, h, w = x.shape
    pad = ((PATCH - w % PATCH) % PATCH, (PATCH - h % PATCH) % PATCH)
    if pad != (0, 0):
        x = torch.nn.functional.pad(x, (0, pad[0], 0, pad[1]), mode="circular")
    rows, cols = (h + PATCH // 2) // PATCH, (w + PATCH // 2) // PATCH
    tokens = (
        x.reshape(b, c, rows, PATCH, cols, PATCH).permute(0, 2, 4, 1, 3, 5).reshape(b, rows * cols, c * 4)
    )
    top, left = (h_offset + PATCH // 2) // PATCH, (w_offset + PATCH // 2) // PATCH
    ids = torch.zeros((rows, cols, 3), device=x.device, dtype=torch.float32)
    ids[..., 0] = index
    ids[..., 1] = torch.linspace(top, rows - 1 + top, rows, device=x.device).unsqueeze(1)
    ids[..., 2] = torch.linspace(left, cols - 1 + left, cols, device=x.device).unsqueeze(0)
    return tokens, ids.reshape(rows * cols, 3)


def unpack(tokens: Tensor, height: int, width: int) -> Tensor:
    """Tokens (B, rows·cols, 4C) back to (B, C, height, width), padding cut off."""
    b, _, features = tokens.shape
    rows, cols = (height + PATCH // 2) // PATCH, (width + PATCH // 2) // PATCH
    c = features // (PATCH * PATCH)
    x = tokens.reshape(b, rows, cols, c, PATCH, PATCH).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, rows * PATCH, cols * PATCH)[:, :, :height, :width]


def _rows(t: Tensor, rows: int) -> Tensor:
    """``t`` repeated (or cut) to ``rows`` batch rows, as ComfyUI's ``repeat_to_batch_size``."""
    if t.shape[0] < rows:
        t = t.repeat((-(-rows // t.shape[0]),) + (1,) * (t.ndim - 1))
    return t[:rows]


def _references(extras: list[FluxInputs], rows: int) -> list[tuple[Tensor, Tensor]]:
    """Packed reference tokens and ids, placed as ComfyUI's default ("offset") method places them."""
    import torch

    out = []
    h = w = 0
    for j, first in enumerate(extras[0].references):
        rh, rw = first.shape[-2:]
        h_offset = w_offset = 0
        if rh + h > rw + w:
            w_offset = w
        else:
            h_offset = h
        h, w = max(h, rh + h_offset), max(w, rw + w_offset)
        stacked = torch.cat([_rows(e.references[j], rows) for e in extras])
        out.append(pack(stacked, 1, h_offset, w_offset))
    return out


def fill_channels(
    part: CondPart, noise_shape: torch.Size, fmt: LatentFormat, channels: int, device: str
) -> Tensor:
    """Fill models' extra input (ComfyUI ``Flux.concat_cond``): the masked image's latent (in model
    space) and, for inpainting models, the pixel mask unshuffled into 64 channels per latent cell."""
    import torch

    b, _, h, w = noise_shape
    image = part.concat_latent
    image = torch.zeros(noise_shape) if image is None else image
    image = fmt.process_in(_rows(_fit(image.to(device, torch.float32), h, w), b))
    if channels <= fmt.channels:
        return image
    mask = part.concat_mask
    mask = torch.ones((b, 1, h, w)) if mask is None else mask
    mask = mask.to(device, torch.float32)
    mask = mask.reshape((-1, 1, *mask.shape[-2:])) if mask.ndim != 4 else mask.mean(dim=1, keepdim=True)
    mask = _fit(mask, h * 8, w * 8)
    mask = mask.view(mask.shape[0], h, 8, w, 8).permute(0, 2, 4, 1, 3).reshape(mask.shape[0], 64, h, w)
    return torch.cat((image, _rows(mask, b)), dim=1)


def _fit(t: Tensor, height: int, width: int) -> Tensor:
    """Bilinear resize to (height, width) after a centred crop to that aspect (``common_upscale``)."""
    import torch

    if tuple(t.shape[-2:]) == (height, width):
        return t
    old_h, old_w = t.shape[-2:]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    t = t[..., y : old_h - y, x : old_w - x]
    return torch.nn.functional.interpolate(t, size=(height, width), mode="bilinear")
