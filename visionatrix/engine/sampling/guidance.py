"""GUIDER: how the conditionings steer the model at each step (ComfyUI's ``CFGGuider``).

At noise level sigma, every conditioning entry active at that level is run through the UNet
(batched together where their text lengths allow), the denoised predictions of each side are
averaged, and classifier-free guidance mixes them: ``uncond + (cond - uncond) · cfg``. With
``cfg == 1`` the negative side is skipped entirely (its term vanishes). A side with no active
entry predicts 0, as in ComfyUI.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from visionatrix.engine.sampling.conditioning import Conditioning, CondPart
from visionatrix.engine.sampling.diffusion_model import DiffusionModel, UNetBatch

_MAX_REPEAT = 4  # text lengths are padded by repetition up to 4× to share a UNet batch (ComfyUI's limit)


@dataclass(frozen=True, eq=False)  # compared by identity: entries hold tensors
class _Prepared:
    side: int  # 0 = positive, 1 = negative
    embeds: Tensor  # (1, L, C) on device
    pooled: Tensor
    time_ids: Tensor
    sigma_start: float  # active while sigma <= sigma_start ...
    sigma_end: float  # ... and sigma >= sigma_end
    extra: Any = None  # the network's own inputs for this entry (``condition``), or None

    def active(self, sigma: float) -> bool:
        return self.sigma_end <= sigma <= self.sigma_start


@dataclass(frozen=True)
class Guider:
    """A model with its conditionings and guidance scale; ``negative=None`` is ComfyUI's BasicGuider."""

    model: DiffusionModel
    positive: Conditioning
    negative: Conditioning | None = None
    cfg: float = 1.0

    def denoiser(
        self, latent_shape: torch.Size, check_cancel: Callable[[], None]
    ) -> Callable[[Tensor, Tensor], Tensor]:
        """``(x, sigma) -> denoised`` for latents of ``latent_shape``; checks for cancel before each call."""
        skip_negative = self.negative is None or math.isclose(self.cfg, 1.0)
        sides = [self.positive] if skip_negative else [self.positive, self.negative or ()]
        prepared = [
            self._prepare(part, side, latent_shape) for side, conds in enumerate(sides) for part in conds
        ]

        def denoise(x: Tensor, sigma: Tensor) -> Tensor:
            check_cancel()
            outputs = _side_predictions(self.model, prepared, x, sigma, len(sides))
            if len(outputs) == 1:
                return outputs[0]
            cond, uncond = outputs
            return uncond + (cond - uncond) * self.cfg

        return denoise

    def _prepare(self, part: CondPart, side: int, shape: torch.Size) -> _Prepared:
        m = self.model
        time_ids = torch.tensor([part.time_ids(shape[2], shape[3])], dtype=torch.float32)
        condition = getattr(m.unet, "condition", None)
        return _Prepared(
            side,
            part.embeds.to(m.device, m.dtype),
            part.pooled.to(m.device, m.dtype),
            time_ids.to(m.device, m.dtype),
            m.sampling.percent_to_sigma(part.start_percent),
            m.sampling.percent_to_sigma(part.end_percent),
            condition(part, shape, m.latent_format) if condition is not None else None,
        )


def _side_predictions(
    model: DiffusionModel, prepared: list[_Prepared], x: Tensor, sigma: Tensor, sides: int
) -> list[Tensor]:
    """Per side, the mean denoised prediction of its active entries (0 where none is active)."""
    totals = [torch.zeros_like(x) for _ in range(sides)]
    counts = [torch.ones_like(x) * 1e-37 for _ in range(sides)]
    pending = [p for p in prepared if p.active(float(sigma[0]))]
    while pending:
        group = [p for p in pending if _can_batch(p, pending[0])]
        pending = [p for p in pending if p not in group]
        outputs = _run_group(model, group, x, sigma)
        for entry, output in zip(group, outputs, strict=True):
            totals[entry.side] += output
            counts[entry.side] += 1.0
    return [total / count for total, count in zip(totals, counts, strict=True)]


def _can_batch(a: _Prepared, b: _Prepared) -> bool:
    if (a.extra is None) != (b.extra is None) or (a.extra is not None and not a.extra.batches_with(b.extra)):
        return False
    la, lb = a.embeds.shape[1], b.embeds.shape[1]
    return la == lb or math.lcm(la, lb) // min(la, lb) <= _MAX_REPEAT


def _run_group(model: DiffusionModel, group: list[_Prepared], x: Tensor, sigma: Tensor) -> tuple[Tensor, ...]:
    """One UNet call for every entry of ``group``; text sequences padded by repetition to a common length."""
    b = x.shape[0]
    length = math.lcm(*(p.embeds.shape[1] for p in group))
    embeds = [p.embeds.repeat(1, length // p.embeds.shape[1], 1).expand(b, -1, -1) for p in group]
    batch = UNetBatch(
        embeds=torch.cat(embeds),
        pooled=torch.cat([p.pooled.expand(b, -1) for p in group]),
        time_ids=torch.cat([p.time_ids.expand(b, -1) for p in group]),
        extras=tuple(p.extra for p in group) if group[0].extra is not None else (),
    )
    n = len(group)
    out = model.denoise(torch.cat([x] * n), torch.cat([sigma] * n), batch)
    return out.chunk(n)
