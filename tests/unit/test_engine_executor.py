"""engine.executor: real node classes run end to end on files in a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from PIL import Image

from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.executor import output_nodes, run_graph
from visionatrix.engine.graph import parse_graph
from visionatrix.engine.registry import node
from visionatrix.errors import Cancelled, InvalidInput, MissingNodeClasses, ModelMissing, NodeError

T = TypeVar("T")

# 4x2 source image; the flow scales it 2x (nearest) and inverts it
SOURCE = np.array(
    [
        [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]],
        [[0, 0, 0], [255, 255, 255], [128, 64, 32], [200, 100, 50]],
    ],
    dtype=np.uint8,
)


class FolderModels:
    """A model store over a folder: just enough for nodes that ask for a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, folder: str, filename: str) -> Path:
        where = self.root / folder / filename
        if not where.is_file():
            raise ModelMissing([(filename, str(where))])
        return where

    def cached(self, key: str, load: Callable[[], T], size_bytes: int | None = None) -> T:
        return load()


@node("TestNeedsModel")
class NeedsModel:
    """Test-only: asks the store for a checkpoint, as a model node would."""

    def run(self, ctx: NodeContext, ckpt_name: str, **_: Any) -> tuple[Any]:
        return (ctx.models.path("checkpoints", ckpt_name),)


@node("TestReturnsList")
class ReturnsList:
    """Test-only: breaks the node contract by returning a list, not a tuple."""

    def run(self, ctx: NodeContext, **_: Any) -> list[int]:
        return [1]


class Recorder:
    def __init__(self) -> None:
        self.node_events: list[tuple[str, float]] = []
        self.overall: list[float] = []

    def on_progress(self, node_id: str, fraction: float) -> None:
        self.node_events.append((node_id, fraction))

    def started(self) -> list[str]:
        return [nid for nid, fraction in self.node_events if fraction == 0.0]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def env(tmp_path: Path, recorder: Recorder) -> RunEnv:
    folders = {name: tmp_path / name for name in ("input", "output", "tmp", "models")}
    for folder in folders.values():
        folder.mkdir()
    Image.fromarray(SOURCE, "RGB").save(folders["input"] / "in.png")
    return RunEnv(
        models=FolderModels(folders["models"]),
        input_dir=folders["input"],
        output_dir=folders["output"],
        tmp_dir=folders["tmp"],
        on_progress=recorder.on_progress,
        on_overall=recorder.overall.append,
    )


def _n(class_type: str, title: str = "", **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title or class_type}}


def branching_flow(choice: str) -> dict[str, Any]:
    """Load -> scale x2 -> invert on the first branch; a LoadImage of a missing file on the second."""
    return {
        "1": _n("LoadImage", image="in.png", upload="image"),
        "2": _n(
            "ImageScale", image=[1, 0], upscale_method="nearest-exact", width=8, height=0, crop="disabled"
        ),
        "3": _n("ImageInvert", image=["2", 0]),
        "4": _n("LoadImage", image="missing.png"),
        "5": _n(
            "VixUiListLogic",
            default_value=choice,
            possible_values=json.dumps(["Inverted", "Broken"]),
            display_name="Mode",
            optional=True,
            advanced=False,
            order=1,
            custom_id="mode",
            hidden=False,
            input_first=["3", 0],
            input_second=["4", 0],
        ),
        "6": _n("SaveImage", images=["5", 0], filename_prefix="ComfyUI"),
        "7": _n("VixUiWorkflowMetadata", name="test", display_name="Test", author="me", version="1.0.0"),
        "8": _n("PrimitiveStringMultiline", "WF_SUBFLOWS", value="{}"),
    }


def test_flow_runs_end_to_end_and_writes_the_expected_pixels(env: RunEnv, recorder: Recorder) -> None:
    outputs = run_graph(branching_flow("Inverted"), env)

    assert outputs == {"6": [env.output_dir / "6_0.png"]}
    with Image.open(outputs["6"][0]) as saved:
        assert saved.mode == "RGB" and saved.size == (8, 4)
        pixels = np.asarray(saved)
    expected = 255 - np.repeat(np.repeat(SOURCE, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(pixels, expected)
    # the unchosen branch (a missing file) and the unused metadata nodes never ran
    assert recorder.started() == ["1", "2", "3", "5", "6"]


def test_the_other_choice_runs_the_other_branch_only(env: RunEnv, recorder: Recorder) -> None:
    with pytest.raises(NodeError) as err:
        run_graph(branching_flow("Broken"), env)
    assert (err.value.node_id, err.value.class_type) == ("4", "LoadImage")
    assert "missing.png" in err.value.message and "not found" in err.value.message
    assert recorder.started() == ["4"]  # lazy: the Inverted branch was never evaluated
    assert list(env.output_dir.iterdir()) == []


def test_checkbox_logic_picks_by_state_with_the_real_input_names(env: RunEnv, recorder: Recorder) -> None:
    graph = {
        "1": _n("LoadImage", image="in.png"),
        "2": _n("ImageInvert", image=["1", 0]),
        "3": _n("LoadImage", image="missing.png"),
        "4": _n(
            "VixUiCheckboxLogic",
            state=True,
            display_name="Invert",
            input_off_state=["3", 0],
            input_on_state=["2", 0],
        ),
        "5": _n("SaveImage", images=["4", 0]),
    }
    run_graph(graph, env)
    with Image.open(env.output_dir / "5_0.png") as saved:
        np.testing.assert_array_equal(np.asarray(saved), 255 - SOURCE)
    assert "3" not in recorder.started()


def test_a_node_feeding_two_consumers_runs_once(env: RunEnv, recorder: Recorder) -> None:
    graph = {
        "1": _n("LoadImage", image="in.png"),
        "2": _n("SaveImage", images=["1", 0]),
        "3": _n("ImageInvert", image=["1", 0]),
        "4": _n("SaveImage", images=["3", 0]),
    }
    outputs = run_graph(graph, env)
    assert recorder.started().count("1") == 1
    assert sorted(outputs) == ["2", "4"]
    assert sorted(p.name for p in env.output_dir.iterdir()) == ["2_0.png", "4_0.png"]


def test_progress_is_monotonic_and_ends_at_one(env: RunEnv, recorder: Recorder) -> None:
    graph = branching_flow("Inverted")
    graph["9"] = _n("ImageBatch", image1=["3", 0], image2=["2", 0])  # two images for SaveImage
    graph["5"]["inputs"]["input_first"] = ["9", 0]
    run_graph(graph, env)

    overall = recorder.overall
    assert overall[-1] == 1.0
    assert all(a < b for a, b in zip(overall, overall[1:], strict=False)), overall
    assert all(0.0 <= f <= 1.0 for f in overall)
    # SaveImage of a batch of two reports half-way inside the node, and the whole run sees it
    assert ("6", 0.5) in recorder.node_events
    assert len(overall) > len(recorder.started())
    assert sorted(env.output_dir.iterdir()) == [env.output_dir / "6_0.png", env.output_dir / "6_1.png"]


def test_cancel_stops_between_nodes(env: RunEnv, recorder: Recorder) -> None:
    def cancel_after_invert(node_id: str, fraction: float) -> None:
        recorder.on_progress(node_id, fraction)
        if node_id == "3" and fraction == 1.0:
            env.cancel.set()

    env.on_progress = cancel_after_invert
    with pytest.raises(Cancelled):
        run_graph(branching_flow("Inverted"), env)
    assert recorder.started() == ["1", "2", "3"]
    assert env.outputs == {} and list(env.output_dir.iterdir()) == []


def test_cancel_set_before_start_runs_nothing(env: RunEnv, recorder: Recorder) -> None:
    env.cancel = threading.Event()
    env.cancel.set()
    with pytest.raises(Cancelled):
        run_graph(branching_flow("Inverted"), env)
    assert recorder.node_events == []


def test_a_failing_node_names_its_id_and_class(env: RunEnv) -> None:
    graph = branching_flow("Inverted")
    graph["2"]["inputs"]["upscale_method"] = "sinc"
    with pytest.raises(NodeError) as err:
        run_graph(graph, env)
    assert (err.value.node_id, err.value.class_type) == ("2", "ImageScale")
    assert err.value.message.startswith("node 2 (ImageScale): upscale_method 'sinc' is not one of")
    assert isinstance(err.value.__cause__, InvalidInput)


def test_a_plain_exception_is_wrapped_with_its_type(env: RunEnv) -> None:
    graph = branching_flow("Inverted")
    graph["5"]["inputs"]["possible_values"] = "not json"
    with pytest.raises(NodeError) as err:
        run_graph(graph, env)
    assert err.value.node_id == "5" and "possible_values" in err.value.reason


def test_a_node_must_return_a_tuple(env: RunEnv) -> None:
    graph = {"1": _n("TestReturnsList"), "2": _n("SaveImage", images=["1", 0])}
    with pytest.raises(NodeError, match=r"node 1 \(TestReturnsList\): run\(\) returned list, not a tuple"):
        run_graph(graph, env)


def test_a_link_past_the_last_output_names_the_consumer(env: RunEnv) -> None:
    graph = {"1": _n("LoadImage", image="in.png"), "2": _n("SaveImage", images=["1", 5])}
    with pytest.raises(NodeError) as err:
        run_graph(graph, env)
    assert err.value.node_id == "2"
    assert (
        "input 'images' links to output 5 of node 1 (LoadImage), which has 2 output(s)" in err.value.message
    )


def test_model_missing_passes_through_unwrapped(env: RunEnv, tmp_path: Path) -> None:
    graph = {"1": _n("TestNeedsModel", ckpt_name="x.safetensors"), "2": _n("SaveImage", images=["1", 0])}
    with pytest.raises(ModelMissing) as err:
        run_graph(graph, env)
    assert err.value.files == [("x.safetensors", str(tmp_path / "models" / "checkpoints" / "x.safetensors"))]


def test_unknown_classes_are_refused_before_anything_runs(env: RunEnv, recorder: Recorder) -> None:
    graph = branching_flow("Inverted")
    graph["4"]["class_type"] = "NoSuchLoader"  # on the unchosen branch: still refused, never a half-run
    graph["10"] = _n("NoSuchSaver", images=["3", 0])  # an unknown sink may be an output
    with pytest.raises(MissingNodeClasses) as err:
        run_graph(graph, env)
    assert err.value.classes == ["NoSuchLoader", "NoSuchSaver"]
    assert recorder.node_events == []


def test_unknown_classes_no_output_needs_are_ignored(env: RunEnv) -> None:
    graph = branching_flow("Inverted")
    graph["11"] = _n("NoSuchHelper")
    graph["7"]["inputs"]["extra"] = ["11", 0]  # only the never-run metadata node consumes it
    assert sorted(run_graph(graph, env)) == ["6"]


def test_a_graph_without_output_nodes_is_refused(env: RunEnv) -> None:
    with pytest.raises(InvalidInput, match="no output node"):
        run_graph({"1": _n("LoadImage", image="in.png")}, env)
    with pytest.raises(MissingNodeClasses, match="SaveAudio"):
        output_nodes(parse_graph({"1": _n("VixUiPrompt", text="x"), "2": _n("SaveAudio", audio=["1", 0])}))


def test_engine_core_and_these_nodes_import_without_torch() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "import visionatrix.engine.executor, visionatrix.engine.graph\n"
        "import visionatrix.engine.nodes.vix_inputs, visionatrix.engine.nodes.image_io\n"
        "import visionatrix.engine.nodes.image_ops\n"
        "assert not {'fastapi', 'sqlalchemy'} & set(sys.modules), 'engine pulled in a server library'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
