"""Fixtures of the SDXL tests: the tiny real-layout checkpoints (SDXL and Playground v2.5), a node context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.unit.sdxl.chain import CKPT, PLAYGROUND, make_ctx  # noqa: E402
from visionatrix.engine.context import NodeContext  # noqa: E402
from visionatrix.models.cache import ModelStore  # noqa: E402
from visionatrix.testing.tiny_sdxl import write_tiny_sdxl_checkpoint  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The tiny model's ops are too small to share: on a busy 2-core machine a second OpenMP thread
    made these tests 3-4× slower (22 s → 80 s), and never faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_tiny_sdxl_checkpoint(root / "checkpoints" / CKPT, seed=0)
    write_tiny_sdxl_checkpoint(root / "checkpoints" / PLAYGROUND, seed=0, playground=True)
    return root


@pytest.fixture(scope="session")
def store(models_dir: Path) -> ModelStore:
    return ModelStore(models_dir)  # shared: the tiny model loads once per precision


@pytest.fixture
def progress() -> list[tuple[str, float]]:
    return []


@pytest.fixture
def ctx(store: ModelStore, tmp_path: Path, progress: list[tuple[str, float]]) -> NodeContext:
    return make_ctx(store, tmp_path, progress, "float32")
