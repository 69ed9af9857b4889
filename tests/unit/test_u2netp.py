"""The u2netp nodes and flow on the real model file and real photos (scikit-image's test images)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.executor import run_graph
from visionatrix.engine.nodes.u2netp import LoadU2NetModel, RembgByU2Net
from visionatrix.models.cache import ModelStore
from visionatrix.models.catalog import load_builtin_catalog, match_graph
from visionatrix.models.download import ensure_models
from visionatrix.testing import u2netp as u2netp_file

skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("onnxruntime")

FLOW = (
    Path(__file__).resolve().parents[2]
    / "visionatrix"
    / "builtin"
    / "flows"
    / "remove_background_u2netp.json"
)
PHOTOS = ("astronaut", "chelsea", "coffee")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    try:
        u2netp_file.fetch_u2netp(root / "rembg")
    except u2netp_file.U2NetpUnavailable as exc:
        pytest.skip(f"real u2netp.onnx unavailable: {exc}")
    return root


@pytest.fixture(scope="module")
def store(models_dir) -> ModelStore:
    return ModelStore(models_dir, budget_bytes=1 << 30)


def _env(store: ModelStore, tmp_path: Path) -> RunEnv:
    return RunEnv(
        models=store, input_dir=tmp_path / "in", output_dir=tmp_path / "out", tmp_dir=tmp_path / "tmp"
    )


def _ctx(store: ModelStore, tmp_path: Path, node_id: str = "1") -> NodeContext:
    return NodeContext(_env(store, tmp_path), node_id, "RembgByU2Net")


def _photo(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    image = Image.fromarray(getattr(skimage_data, name)())
    if size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)[None] / 255.0


def test_fetched_file_is_the_one_the_builtin_catalog_names(models_dir):
    entry = load_builtin_catalog()["U2NetP"]
    assert (entry.hash, entry.file_size) == (u2netp_file.SHA256, u2netp_file.SIZE)
    # the catalog's own verification accepts it where the flow expects it: nothing to download
    assert ensure_models([entry], models_dir, offline=True) == [models_dir / "rembg" / "u2netp.onnx"]


@pytest.mark.parametrize("name", PHOTOS)
def test_cuts_out_the_subject_of_real_photos(name, store, tmp_path, record_property):
    (model,) = LoadU2NetModel().run(_ctx(store, tmp_path))
    images = _photo(name, (512, 512))
    node = RembgByU2Net()
    node.run(_ctx(store, tmp_path), model, images)  # warm-up: the first run sets up onnxruntime's kernels

    started = time.perf_counter()
    rgba, mask = node.run(_ctx(store, tmp_path), model, images)
    seconds = time.perf_counter() - started
    record_property(f"u2netp_seconds_512_{name}", round(seconds, 3))
    print(f"u2netp {name} 512x512: {seconds * 1000:.0f} ms")

    assert rgba.shape == (1, 512, 512, 4) and rgba.dtype == np.float32
    np.testing.assert_array_equal(rgba[..., :3], images)
    alpha = rgba[0, ..., 3]
    np.testing.assert_array_equal(alpha, mask[0])
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    assert 0.10 < (alpha > 0.5).mean() < 0.80
    assert alpha[:16, :16].max() < 0.1 and alpha[:16, -16:].max() < 0.1  # top corners are background
    assert alpha[240:272, 240:272].min() > 0.9  # the subject's centre is kept
    if name == "coffee":  # the cup sits in the middle: every corner is table
        assert alpha[-16:, :16].max() < 0.1 and alpha[-16:, -16:].max() < 0.1


def test_alpha_has_the_input_size_for_any_shape(store, tmp_path):
    (model,) = LoadU2NetModel().run(_ctx(store, tmp_path))
    cat = _photo("chelsea")  # 300 x 451, not square
    batch = np.concatenate([cat, cat[:, :, ::-1]])  # a batch of two: the cat and its mirror image
    rgba, _ = RembgByU2Net().run(_ctx(store, tmp_path), model, batch)
    assert rgba.shape == (2, 300, 451, 4)
    # the model sees a mirrored photo and gives much the same mask, mirrored
    plain, mirrored = rgba[0, ..., 3] > 0.5, rgba[1, :, ::-1, 3] > 0.5
    assert (plain & mirrored).sum() / (plain | mirrored).sum() > 0.85


def test_model_is_loaded_once_and_kept(store, tmp_path):
    (first,) = LoadU2NetModel().run(_ctx(store, tmp_path))
    (again,) = LoadU2NetModel().run(_ctx(store, tmp_path))
    assert again is first
    assert any(key.startswith("u2net:") for key in store.keys())
    assert store.used_bytes >= u2netp_file.SIZE


def test_builtin_flow_removes_the_background(store, tmp_path):
    graph = json.loads(FLOW.read_text())
    assert [e.relpath for e in match_graph(graph, load_builtin_catalog())] == ["rembg/u2netp.onnx"]
    env = _env(store, tmp_path)
    env.input_dir.mkdir()
    Image.fromarray(skimage_data.coffee()).save(env.input_dir / "coffee.png")
    graph["1"]["inputs"]["image"] = "coffee.png"

    outputs = run_graph(graph, env)

    (saved,) = outputs["4"]
    with Image.open(saved) as result:
        assert result.mode == "RGBA" and result.size == (600, 400)
        alpha = np.asarray(result)[..., 3]
    assert alpha[0, 0] < 25 and alpha[200, 300] > 230
