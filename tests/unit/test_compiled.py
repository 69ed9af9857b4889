"""engine.compiled: VIX_COMPILE's settings, and a network compiled beside the work: eager results
until the compiled twin has run once, then the twin's; a network that cannot compile stays eager."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from visionatrix.engine.compiled import WarmCompiled, compile_mode, maybe_compiled
from visionatrix.errors import InvalidInput


@pytest.mark.parametrize(
    ("setting", "mode"),
    [
        ("", None),
        ("0", None),
        ("off", None),
        ("1", "default"),
        ("on", "default"),
        ("reduce-overhead", "reduce-overhead"),
    ],
)
def test_settings(setting: str, mode: str | None) -> None:
    assert compile_mode(setting) == mode


def test_an_unknown_setting_names_the_choices() -> None:
    with pytest.raises(InvalidInput, match="VIX_COMPILE='fast'.*max-autotune"):
        compile_mode("fast")


class Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.eager_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            self.eager_calls += 1
        return torch.relu(self.linear(x))


def test_calls_run_eager_until_the_compiled_twin_is_ready() -> None:
    net = Counting()
    wrapped = WarmCompiled(net, "eager")  # the wrapper's logic, not Inductor's speed
    x = torch.randn(2, 4)
    first = wrapped(x)  # starts the compile beside this call, which runs eager
    assert net.eager_calls >= 1
    assert wrapped.wait(120) and wrapped.compiled and wrapped.failed is None
    eager_before = net.eager_calls
    torch.testing.assert_close(wrapped(x), first)
    assert net.eager_calls == eager_before  # the compiled twin answered
    assert wrapped.linear is net.linear and next(wrapped.parameters()) is net.linear.weight


class Untraceable(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._dynamo.graph_break()
        return x + 1


def test_a_network_that_cannot_compile_stays_eager() -> None:
    torch._dynamo.reset()
    wrapped = WarmCompiled(Untraceable(), "default", backend="no_such_backend")
    x = torch.zeros(3)
    assert torch.equal(wrapped(x), x + 1)
    assert wrapped.wait(120) and not wrapped.compiled
    assert wrapped.failed is not None
    assert torch.equal(wrapped(x), x + 1)


def test_maybe_compiled_only_when_asked() -> None:
    net = Counting()
    assert maybe_compiled(net, {}) is net
    assert isinstance(maybe_compiled(net, {"compile": "default"}), WarmCompiled)


def test_birefnet_loader_wraps_the_network_when_asked(tmp_path: Path) -> None:
    """With VIX_COMPILE on, the cached network is the wrapper (its own cache entry), and a task run
    while it compiles gives the eager network's exact result."""
    from tests.unit.test_birefnet import make_env
    from visionatrix.engine.context import NodeContext
    from visionatrix.engine.nodes.birefnet import LoadRembgByBiRefNetModel, RembgByBiRefNet
    from visionatrix.testing.tiny_birefnet import write_tiny_birefnet

    env = make_env(tmp_path, "float32")
    write_tiny_birefnet(tmp_path / "models" / "birefnet" / "General-Lite.safetensors", "lite")
    (eager,) = LoadRembgByBiRefNetModel().run(NodeContext(env, "24", "x"), model="General-Lite.safetensors")
    env.options["compile"] = "eager"  # Dynamo traces it; Inductor would take minutes on 2 cores
    (wrapped,) = LoadRembgByBiRefNetModel().run(NodeContext(env, "24", "x"), model="General-Lite.safetensors")
    assert isinstance(wrapped, WarmCompiled) and not isinstance(eager, WarmCompiled)
    images = np.random.default_rng(0).random((1, 40, 48, 3), dtype=np.float32)
    expected, _ = RembgByBiRefNet().run(NodeContext(env, "23", "x"), model=eager, images=images)
    got, _ = RembgByBiRefNet().run(NodeContext(env, "23", "x"), model=wrapped, images=images)
    np.testing.assert_array_equal(got, expected)
    assert wrapped.wait(300) and wrapped.failed is None, wrapped.failed
    again, _ = RembgByBiRefNet().run(NodeContext(env, "23", "x"), model=wrapped, images=images)
    np.testing.assert_allclose(again, expected, atol=1 / 255)  # traced: same ops, same result
