"""Streaming weights from a safetensors file into a module built on the ``meta`` device.

The loaders of the large models (the 12 B Flux transformer, T5-XXL) never hold a file in memory:
each parameter is read on its own (only the rows it needs of a fused tensor), cast to the dtype it
is kept in and moved to its device, then assigned. Peak memory is the loaded model plus one
tensor. ``Read`` names the file tensor and the transform: a parameter that is a slice of rows of a
fused q/k/v tensor, the two halves of a modulation swapped, a 1×1 convolution used as a linear
layer, or the tensor as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Read:
    """One parameter's source: file tensor ``name`` and ``op`` ("copy", "rows", "swap", "conv1x1")."""

    name: str
    op: str = "copy"
    start: int = 0
    stop: int = 0


def header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, from the safetensors header (nothing else is read)."""
    from visionatrix.models.architecture import read_header

    return {k: tuple(v["shape"]) for k, v in read_header(path).items() if k != "__metadata__"}


def header_dtypes(path: Path) -> dict[str, str]:
    """Tensor name -> safetensors dtype string ("BF16", "F16", "F8_E4M3"...)."""
    from visionatrix.models.architecture import read_header

    return {k: str(v["dtype"]) for k, v in read_header(path).items() if k != "__metadata__"}


def read_tensor(handle: Any, source: Read) -> torch.Tensor:
    import torch

    if source.op == "rows":
        return handle.get_slice(source.name)[source.start : source.stop]
    tensor = handle.get_tensor(source.name)
    if source.op == "swap":
        first, second = tensor.chunk(2, dim=0)
        return torch.cat([second, first], dim=0)
    if source.op == "conv1x1":
        return tensor.flatten(1)
    return tensor


def load_into(
    module: torch.nn.Module,
    path: Path,
    sources: Mapping[str, Read],
    dtype_of: Callable[[str], torch.dtype],
    device: str,
    on_tensor: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Assign every parameter of the meta-built ``module`` from ``path``; returns the names not found.

    ``dtype_of(parameter name)`` says what each is kept in. ``on_tensor(done, total)`` is called
    every few hundred tensors (a progress and cancel point). Buffers stay as built.
    """
    from safetensors import safe_open

    names = [n for n, _ in module.named_parameters()]
    missing = [n for n in names if n not in sources]
    if missing:
        return missing
    state: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as handle:
        present = set(handle.keys())
        absent = [n for n in names if sources[n].name not in present]
        if absent:
            return absent
        for done, name in enumerate(names):
            if on_tensor is not None and done % 200 == 0:
                on_tensor(done, len(names))
            # a copy even where dtype and device already match: a view would keep the whole file mapped
            tensor = read_tensor(handle, sources[name])
            state[name] = tensor.to(device=device, dtype=dtype_of(name), copy=True)
    module.load_state_dict(state, strict=False, assign=True)
    return []


def meta_buffers(module: torch.nn.Module) -> list[str]:
    return [n for n, b in module.named_buffers() if b.is_meta]


def check_shapes(module: torch.nn.Module, path: Path, sources: Mapping[str, Read], what: str) -> None:
    """Refuse a file whose tensors do not have the shapes ``module`` was built for, naming one."""
    shapes = header_shapes(path)
    for name, param in module.named_parameters():
        source = sources[name]
        have = shapes.get(source.name)
        if have is None:
            continue
        if source.op == "rows":
            have = (source.stop - source.start, *have[1:])
        elif source.op == "conv1x1":
            have = (have[0], math.prod(have[1:]))
        if tuple(have) != tuple(param.shape):
            raise InvalidInput(
                f"{path.name}: {what} tensor {source.name} has shape {list(have)}, "
                f"expected {list(param.shape)}"
            )


def bytes_of(shapes: Iterable[tuple[tuple[int, ...], int]]) -> int:
    """Total bytes of tensors given as (shape, item size) pairs."""
    return sum(math.prod(shape) * size for shape, size in shapes)
