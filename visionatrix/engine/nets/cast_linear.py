"""Linear layers kept in a narrow dtype (8-bit) and computed in the input's dtype.

ComfyUI's fp8 weight storage, done by swapping a loaded ``nn.Linear``'s class: each call casts the
weight (and bias) to the input's dtype just for that call, so a 12 B transformer stays 12 GB. A
class swap, unlike forward hooks, survives ``copy.deepcopy``, which LoRA patching uses to make
copies that share every unpatched weight.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class CastLinear(torch.nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return torch.nn.functional.linear(x, self.weight.to(x.dtype), bias)


def cast_linear_layers(module: torch.nn.Module, keep: Callable[[str], bool] = lambda name: False) -> None:
    """Make every plain linear layer of ``module`` (except the names ``keep`` says) a ``CastLinear``."""
    for name, child in module.named_modules():
        if type(child) is torch.nn.Linear and not keep(name):
            child.__class__ = CastLinear
