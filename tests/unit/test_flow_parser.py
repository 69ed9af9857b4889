"""The flow parser against the 52 real Visionatrix flows and against broken graphs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import FIXTURES
from visionatrix.errors import InvalidInput
from visionatrix.flows.input_nodes import parse_title
from visionatrix.flows.model import Flow
from visionatrix.flows.parser import check_graph, load_flow_file, parse_flow

FLOWS_DIR = FIXTURES / "vixflows" / "flows"
FLOW_FILES = sorted(FLOWS_DIR.glob("*.json"))


def load(name: str) -> tuple[dict[str, Any], Flow]:
    return load_flow_file(FLOWS_DIR / f"{name}.json")


def param(flow: Flow, name: str):
    found = flow.input_param(name)
    assert found is not None, f"{flow.name} has no input {name!r}"
    return found


def tiny_graph(**extra_nodes: dict[str, Any]) -> dict[str, Any]:
    graph: dict[str, Any] = {
        "1": {"class_type": "VixUiWorkflowMetadata", "inputs": {"name": "tiny", "tags": '["x"]'}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}},
        "3": {"class_type": "LoadImage", "inputs": {"image": ""}, "_meta": {"title": "input;Picture"}},
    }
    graph.update(extra_nodes)
    return graph


def test_all_fixture_flows_parse() -> None:
    assert len(FLOW_FILES) == 52
    for path in FLOW_FILES:
        graph, flow = load_flow_file(path)
        assert flow.name == path.stem
        assert flow.outputs, f"{path.name}: no outputs"
        assert flow.node_classes == sorted({n["class_type"] for n in graph.values()})
        assert [p.order for p in flow.input_params] == sorted(p.order for p in flow.input_params)


def test_sdxl_lighting() -> None:
    _, flow = load("sdxl_lighting")
    assert (flow.display_name, flow.version, flow.author) == ("SDXL Lighting", "1.0.2", "bigcat88")
    assert flow.tags == ["general", "lighting", "simple"]
    assert flow.requires == []
    assert flow.is_seed_supported and flow.is_count_supported and flow.is_translations_supported
    assert flow.required_memory_gb == 6.0
    assert flow.sub_flows == [] and flow.models == []
    assert [p.name for p in flow.input_params] == ["prompt", "steps_number", "negative_prompt", "batch_size"]

    prompt = param(flow, "prompt")
    assert (prompt.type, prompt.optional, prompt.translatable) == ("text", False, True)
    assert prompt.comfy_node_id == {"16": ["inputs", "text"]}
    negative = param(flow, "negative_prompt")
    assert (negative.type, negative.optional, negative.default) == ("text", True, "ugly")
    steps = param(flow, "steps_number")
    assert steps.type == "list" and steps.class_type == "VixUiListLogic"
    assert list(steps.options or {}) == ["4 steps", "8 steps"]
    assert steps.default == "8 steps"
    batch = param(flow, "batch_size")
    assert (batch.type, batch.min, batch.max, batch.step, batch.hidden) == ("range", 1, 10, 1, True)
    assert batch.default == 1 and isinstance(batch.default, int)

    # Node 9 is the SaveImage; node 24 is the steps ListLogic that feeds it.
    assert [(o.comfy_node_id, o.type) for o in flow.outputs] == [(9, "image")]
    assert flow.output_templates() == [
        {"comfy_node_id": 9, "type": "image", "file_size": -1, "batch_size": -1}
    ]


def test_remove_background_birefnet() -> None:
    _, flow = load("remove_background_birefnet")
    assert [p.name for p in flow.input_params] == ["input_image"]
    image = param(flow, "input_image")
    assert (image.type, image.optional, image.display_name, image.order) == ("image", False, "Input image", 1)
    assert image.comfy_node_id == {"2": ["inputs", "image"]} and image.is_file
    assert [(o.comfy_node_id, o.type) for o in flow.outputs] == [(13, "image")]
    assert flow.is_seed_supported is False
    assert flow.sub_flows == [{"display_name": "Remove background (BiRefNet)", "type": "image"}]


def test_inpaint_masks_and_checkbox_logic() -> None:
    _, flow = load("colorful_xl_inpaint")
    mask = param(flow, "mask_redraw")
    assert (mask.type, mask.optional, mask.source_input_name) == ("image-mask", False, "source_image")
    context = param(flow, "mask_context")
    assert (context.type, context.optional) == ("image-mask", True)
    fast = param(flow, "fast_run")
    assert (fast.type, fast.default, fast.class_type) == ("bool", True, "VixUiCheckboxLogic")
    assert fast.comfy_node_id == {"307": ["inputs", "state"]}
    assert flow.sub_flows[0]["type"] == "image-inpaint"


def test_supir_range_scale_dict_list_and_checkbox() -> None:
    _, flow = load("supir_upscaler")
    scale = param(flow, "scale_factor")
    assert (scale.type, scale.min, scale.max, scale.default) == ("range_scale", 1.1, 3.0, 2.0)
    assert scale.source_input_name == "image_to_upscale"
    sampler = param(flow, "in_param_125")
    assert sampler.default == "Soft"
    assert sampler.options is not None and sampler.options["Sharp"] == "TiledRestoreDPMPP2MSampler"
    low_memory = param(flow, "in_param_138")
    assert (low_memory.type, low_memory.default, low_memory.class_type) == ("bool", False, "VixUiCheckbox")
    assert [s["display_name"] for s in flow.sub_flows][:2] == ["SUPIR(1.5x)", "SUPIR(2x)"]


def test_audio_flow_float_and_int_ranges() -> None:
    _, flow = load("ace_step")
    length = param(flow, "length")
    assert (length.type, length.min, length.max, length.default) == ("range", 5.0, 180.0, 45.0)
    assert isinstance(length.default, float)
    steps = param(flow, "steps_count")
    assert (steps.min, steps.max, steps.default) == (40, 500, 50) and isinstance(steps.default, int)
    assert [(o.comfy_node_id, o.type) for o in flow.outputs] == [(19, "audio")]


def test_titled_optional_images_and_text_output() -> None:
    _, flow = load("ask_ai_internal")
    assert flow.hidden is True and flow.is_count_supported is False
    image = param(flow, "image_1")  # title "input;Image 1; optional;advanced;order=10;custom_id=image_1"
    assert (image.display_name, image.optional, image.advanced, image.order) == ("Image 1", True, True, 10)
    assert [(o.comfy_node_id, o.type) for o in flow.outputs] == [(54, "text")]


@pytest.mark.parametrize(
    ("name", "output_type"),
    [("hunyuan_3d", "3d-model"), ("hunyuan_img2video", "video"), ("ltxv_txt2video", "image-animated")],
)
def test_output_types(name: str, output_type: str) -> None:
    _, flow = load(name)
    assert {o.type for o in flow.outputs} == {output_type}


def test_aspect_ratio_and_three_way_list_logic() -> None:
    _, cosmos = load("comsmos_predict2_t2i_14b")
    ratio = param(cosmos, "aspect_ratio")
    assert ratio.type == "list" and ratio.default == "20:11 (1280x704)"
    assert (
        ratio.options is not None
        and "1:1 (1024x1024)" in ratio.options
        and "20:11 (1280x704)" in ratio.options
    )
    assert ratio.comfy_node_id == {"34": ["inputs", "aspect_ratio"]}
    _, cascade = load("stable_cascade")
    assert list(param(cascade, "pass_count").options or {}) == ["One pass", "Two pass", "Three pass"]


def test_unnamed_input_gets_node_id_name() -> None:
    _, flow = load("comicu_portrait")
    gender = param(flow, "in_param_396")
    assert (gender.display_name, gender.optional, gender.default) == ("Base gender", False, "girl")


def test_parse_title_flags_in_any_order() -> None:
    title = "input;Context to include;order=3;custom_id=Mask_Context;mask;OPTIONAL;source_input_name=src;"
    assert parse_title("7", title) == {
        "display_name": "Context to include",
        "order": 3,
        "custom_id": "mask_context",  # lower-cased, like Visionatrix
        "mask": True,
        "optional": True,
        "source_input_name": "src",
    }
    assert parse_title("7", "input; Face ;hidden; advanced ;unknown") == {
        "display_name": "Face",
        "hidden": True,
        "advanced": True,
    }


def test_titled_input_defaults() -> None:
    flow = parse_flow(tiny_graph())
    picture = param(flow, "in_param_3")
    assert (picture.display_name, picture.order, picture.optional, picture.type) == (
        "Picture",
        99,
        False,
        "image",
    )
    assert flow.tags == ["x"] and flow.output_templates()[0]["comfy_node_id"] == 2


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ([], "JSON object of nodes"),
        ({}, "JSON object of nodes"),
        ({"1": "SaveImage"}, "node 1: expected an object"),
        ({"1": {"inputs": {}}}, "node 1: missing class_type"),
        ({"1": {"class_type": "SaveImage", "inputs": []}}, "'inputs' must be an object"),
        ({"1": {"class_type": "SaveImage", "inputs": {}, "_meta": "x"}}, "'_meta' must be an object"),
        ({"1": {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}}}, "input 'images'"),
        ({"1": {"class_type": "SaveImage", "inputs": {}}}, "no VixUiWorkflowMetadata node"),
        ({"1": {"class_type": "VixUiWorkflowMetadata", "inputs": {"name": " "}}}, "the flow has no name"),
    ],
)
def test_broken_graphs_are_refused(graph: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_flow(graph)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"4": {"class_type": "VixUiList", "inputs": {"default_value": "a", "possible_values": "[a"}}},
            "not JSON",
        ),
        (
            {"4": {"class_type": "VixUiRangeInt", "inputs": {"value": "x", "min": 1, "max": 2, "step": 1}}},
            "number",
        ),
        (
            {"4": {"class_type": "VixUiPrompt", "inputs": {"display_name": "P"}}},
            "missing its value input 'text'",
        ),
        ({"4": {"class_type": "VixUiMystery", "inputs": {}}}, "not supported as a flow input"),
        (
            {"4": {"class_type": "CLIPTextEncode", "inputs": {}, "_meta": {"title": "input;Text"}}},
            "not supported",
        ),
        (
            {"4": {"class_type": "LoadImage", "inputs": {}, "_meta": {"title": "input;A;order=x"}}},
            "order='x'",
        ),
        (
            {
                "4": {
                    "class_type": "LoadImage",
                    "inputs": {},
                    "_meta": {"title": "input;A;custom_id=in_param_3"},
                }
            },
            "twice",
        ),
        ({"4": {"class_type": "VixUiPrompt", "inputs": {"text": "", "order": "first"}}}, "node 4 .* order"),
        (
            {"1": {"class_type": "VixUiWorkflowMetadata", "inputs": {"name": "n", "tags": "[x"}}},
            "'tags' is not valid",
        ),
        (
            {"1": {"class_type": "VixUiWorkflowMetadata", "inputs": {"name": "n", "tags": "{}"}}},
            "bad metadata tags",
        ),
        (
            {"4": {"class_type": "VixUiWorkflowMetadata", "inputs": {"name": "other"}}},
            "2 VixUiWorkflowMetadata",
        ),
    ],
)
def test_broken_declarations_name_the_node(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_flow(tiny_graph(**extra))


def test_load_flow_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInput, match="bad.json"):
        load_flow_file(bad)
    with pytest.raises(InvalidInput, match="missing.json"):
        load_flow_file(tmp_path / "missing.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(tiny_graph()), encoding="utf-8")
    graph, flow = load_flow_file(good)
    assert flow.name == "tiny" and graph["3"]["class_type"] == "LoadImage"


def test_check_graph_accepts_every_fixture() -> None:
    for path in FLOW_FILES:
        check_graph(json.loads(path.read_text(encoding="utf-8")))


def test_flow_modules_import_no_heavy_stack() -> None:
    code = (
        "import sys\n"
        "import visionatrix.flows.parser, visionatrix.flows.inputs, visionatrix.flows.graph_patch\n"
        "heavy = [m for m in ('torch', 'fastapi', 'sqlalchemy', 'diffusers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
