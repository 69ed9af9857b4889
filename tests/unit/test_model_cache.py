"""models.cache.ModelStore: model paths, LRU eviction by bytes, one load per key across threads."""

from __future__ import annotations

import threading
import time
import weakref

import numpy as np
import pytest

from visionatrix.engine.context import ModelStore as ModelStoreProtocol
from visionatrix.errors import ModelMissing
from visionatrix.models.cache import ModelStore, default_budget, estimate_size, total_ram


class Blob:
    """A loaded 'model' whose lifetime the test can watch."""


def test_store_satisfies_the_engine_protocol(tmp_path):
    store: ModelStoreProtocol = ModelStore(tmp_path, budget_bytes=100)
    assert store.cached("k", lambda: 1, size_bytes=1) == 1


def test_path_names_the_missing_file_and_where_it_belongs(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(ModelMissing) as missing:
        store.path("rembg", "u2netp.onnx")
    assert missing.value.files == [("u2netp.onnx", str(tmp_path / "rembg" / "u2netp.onnx"))]
    (tmp_path / "rembg").mkdir()
    (tmp_path / "rembg" / "u2netp.onnx").write_bytes(b"x")
    assert store.path("rembg", "u2netp.onnx") == tmp_path / "rembg" / "u2netp.onnx"


def test_hit_returns_the_same_object_without_loading_again(tmp_path):
    store = ModelStore(tmp_path, budget_bytes=1000)
    loads = []
    first = store.cached("a", lambda: loads.append(1) or Blob(), size_bytes=10)
    assert store.cached("a", lambda: loads.append(1) or Blob(), size_bytes=10) is first
    assert loads == [1]


def test_least_recently_used_goes_first_once_over_budget(tmp_path):
    store = ModelStore(tmp_path, budget_bytes=100)
    store.cached("a", Blob, size_bytes=40)
    store.cached("b", Blob, size_bytes=40)
    store.cached("a", Blob)  # a is now the most recently used
    store.cached("c", Blob, size_bytes=40)  # 120 > 100: b must go, a stays

    assert store.keys() == ["a", "c"]
    assert store.used_bytes == 80


def test_eviction_releases_the_object(tmp_path):
    store = ModelStore(tmp_path, budget_bytes=100)
    ref = weakref.ref(store.cached("big", Blob, size_bytes=80))
    store.cached("next", Blob, size_bytes=80)
    assert "big" not in store
    assert ref() is None


def test_evicting_a_big_model_collects_its_reference_cycles(tmp_path):
    store = ModelStore(tmp_path, budget_bytes=150 << 20)

    def cyclic() -> Blob:
        blob = Blob()
        blob.me = blob  # type: ignore[attr-defined]  # modules with back-references are common
        return blob

    ref = weakref.ref(store.cached("big", cyclic, size_bytes=100 << 20))
    store.cached("next", Blob, size_bytes=100 << 20)
    assert ref() is None


def test_an_object_larger_than_the_budget_is_still_kept(tmp_path):
    store = ModelStore(tmp_path, budget_bytes=100)
    store.cached("small", Blob, size_bytes=10)
    store.cached("huge", Blob, size_bytes=500)
    assert store.keys() == ["huge"]


def test_size_is_estimated_from_arrays_and_torch_modules(tmp_path):
    torch = pytest.importorskip("torch")
    store = ModelStore(tmp_path, budget_bytes=10_000)
    store.cached("arr", lambda: np.zeros(1000, dtype=np.float32))
    assert store.used_bytes == 4000
    layer = torch.nn.Linear(10, 10)  # 100 weights + 10 biases, float32
    assert estimate_size(layer) == 440
    assert estimate_size({"unet": layer, "scale": np.zeros(10, dtype=np.float64)}) == 520


def test_size_falls_back_to_the_files_load_opened(tmp_path):
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "m.onnx").write_bytes(b"\0" * 1234)
    store = ModelStore(tmp_path, budget_bytes=10_000)
    store.cached("session", lambda: (store.path("onnx", "m.onnx"), Blob())[1])
    assert store.used_bytes == 1234


def test_threads_racing_for_one_key_load_it_once(tmp_path):
    store = ModelStore(tmp_path, budget_bytes=1000)
    loads = []
    start = threading.Barrier(8)

    def slow_load() -> Blob:
        loads.append(threading.get_ident())
        time.sleep(0.05)
        return Blob()

    results: list[Blob] = []

    def worker() -> None:
        start.wait()
        results.append(store.cached("shared", slow_load, size_bytes=10))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_different_keys_load_in_parallel(tmp_path):
    store = ModelStore(tmp_path, budget_bytes=1000)
    both_inside = threading.Barrier(2, timeout=5)

    def load() -> Blob:
        both_inside.wait()  # deadlocks (BrokenBarrierError) if loads of other keys were serialised
        return Blob()

    threads = [threading.Thread(target=store.cached, args=(k, load, 1)) for k in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(store.keys()) == ["x", "y"]


def test_many_threads_keep_the_accounting_consistent(tmp_path):
    store = ModelStore(tmp_path, budget_bytes=50)

    def churn(offset: int) -> None:
        for i in range(200):
            store.cached(f"k{(i + offset) % 17}", Blob, size_bytes=10)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.used_bytes <= 50
    assert len(store.keys()) == store.used_bytes // 10


def test_default_budget_is_a_share_of_ram(tmp_path):
    assert total_ram() > 0
    assert ModelStore(tmp_path).budget_bytes == default_budget() == int(total_ram() * 0.6)
