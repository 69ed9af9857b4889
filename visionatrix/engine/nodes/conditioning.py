"""Conditioning utility nodes with ComfyUI's names and rules.

ConditioningCombine(conditioning_1, conditioning_2)     -> (CONDITIONING,)  both, averaged per step
ConditioningZeroOut(conditioning)                       -> (CONDITIONING,)  zero embeddings and pooled
ConditioningSetTimestepRange(conditioning, start, end)  -> (CONDITIONING,)  active from start to end
                                                           (fractions of the schedule, 0 = first step)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    from visionatrix.engine.sampling.conditioning import Conditioning


@node("ConditioningCombine")
class ConditioningCombine:
    def run(
        self, ctx: NodeContext, conditioning_1: Conditioning, conditioning_2: Conditioning
    ) -> tuple[Conditioning]:
        return (tuple(conditioning_1) + tuple(conditioning_2),)


@node("ConditioningZeroOut")
class ConditioningZeroOut:
    def run(self, ctx: NodeContext, conditioning: Conditioning) -> tuple[Conditioning]:
        import torch

        return (
            tuple(
                dataclasses.replace(p, embeds=torch.zeros_like(p.embeds), pooled=torch.zeros_like(p.pooled))
                for p in conditioning
            ),
        )


@node("ConditioningSetTimestepRange")
class ConditioningSetTimestepRange:
    def run(
        self, ctx: NodeContext, conditioning: Conditioning, start: float = 0.0, end: float = 1.0
    ) -> tuple[Conditioning]:
        start, end = float(start), float(end)
        for name, value in (("start", start), ("end", end)):
            if not 0.0 <= value <= 1.0:
                raise InvalidInput(f"ConditioningSetTimestepRange: {name} must be in [0, 1], got {value}")
        return (tuple(dataclasses.replace(p, start_percent=start, end_percent=end) for p in conditioning),)
