"""Values, files and seeds patched into real flow graphs; optional image inputs cut out."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.support import FIXTURES
from visionatrix.errors import InvalidInput
from visionatrix.flows.graph_patch import cut_node, patch_graph
from visionatrix.flows.inputs import validate_inputs
from visionatrix.flows.model import Flow
from visionatrix.flows.parser import check_graph, load_flow_file, parse_flow

FLOWS_DIR = FIXTURES / "vixflows" / "flows"


def load(name: str) -> tuple[dict[str, Any], Flow]:
    return load_flow_file(FLOWS_DIR / f"{name}.json")


def required_form(flow: Flow) -> tuple[dict[str, str], dict[str, str]]:
    """Values for every required input: text for text fields, the default otherwise; file names."""
    values = {
        p.name: "a prompt" if p.type == "text" else str(p.default)
        for p in flow.input_params
        if not p.optional and not p.is_file
    }
    files = {p.name: f"1_{p.name}.png" for p in flow.input_params if p.is_file and not p.optional}
    return values, files


def seeds(graph: dict[str, Any]) -> dict[str, Any]:
    return {
        node_id: node["inputs"][name]
        for node_id, node in graph.items()
        for name in ("seed", "noise_seed")
        if name in node["inputs"]
    }


def test_sdxl_lighting_values_and_seed() -> None:
    graph, flow = load("sdxl_lighting")
    original = copy.deepcopy(graph)
    form = {"prompt": "a red fox", "steps_number": "4 steps", "batch_size": "3"}
    patched = patch_graph(graph, flow, validate_inputs(flow, form, set()), {}, seed=42)
    assert patched["16"]["inputs"]["text"] == "a red fox"
    assert patched["18"]["inputs"]["text"] == "ugly"
    assert patched["24"]["inputs"]["default_value"] == "4 steps"
    assert patched["25"]["inputs"]["value"] == 3
    assert seeds(patched) == {"3": 42, "10": 42}
    assert graph == original, "the flow's own graph must stay untouched"


def test_no_seed_keeps_the_flow_seeds() -> None:
    graph, flow = load("sdxl_lighting")
    patched = patch_graph(graph, flow, {"prompt": "p"}, {}, seed=None)
    assert seeds(patched) == seeds(graph) == {"3": 776388286186862, "10": 776388286186862}


def test_noise_seed_of_random_noise() -> None:
    graph, flow = load("flux1_dev")
    patched = patch_graph(graph, flow, validate_inputs(flow, {"prompt": "p"}, set()), {}, seed=5)
    assert patched["25"]["class_type"] == "RandomNoise" and patched["25"]["inputs"]["noise_seed"] == 5


def test_seed_ignored_when_flow_does_not_support_it() -> None:
    graph, flow = load("sdxl_lighting")
    patched = patch_graph(
        graph, flow.model_copy(update={"is_seed_supported": False}), {"prompt": "p"}, {}, seed=1
    )
    assert seeds(patched) == seeds(graph)


def test_file_goes_to_the_loader_node() -> None:
    graph, flow = load("remove_background_birefnet")
    patched = patch_graph(graph, flow, {}, {"input_image": "12_input_image.png"}, seed=3)
    assert patched["2"]["inputs"]["image"] == "12_input_image.png"
    assert patched.keys() == graph.keys()


def test_missing_required_file_is_refused() -> None:
    graph, flow = load("remove_background_birefnet")
    with pytest.raises(InvalidInput, match="missing required input 'input_image'"):
        patch_graph(graph, flow, {}, {}, seed=None)


def test_checkbox_aspect_ratio_and_dict_list() -> None:
    graph, flow = load("colorful_xl")
    values = validate_inputs(
        flow, {"prompt": "p", "fast_run": "on", "aspect_ratio": "9:16 (768x1344)"}, set()
    )
    patched = patch_graph(graph, flow, values, {}, seed=None)
    assert patched["307"]["inputs"]["state"] is True
    assert patched["318"]["inputs"]["aspect_ratio"] == "9:16 (768x1344)"

    graph, flow = load("supir_upscaler")
    values = validate_inputs(flow, {"scale_factor": "1.5", "in_param_125": "Sharp"}, {"image_to_upscale"})
    patched = patch_graph(graph, flow, values, {"image_to_upscale": "u.png"}, seed=None)
    # The label stays: the VixUiList node maps it through its own possible_values.
    assert patched["125"]["inputs"]["default_value"] == "Sharp"
    assert patched["120"]["inputs"]["value"] == 1.5


def test_omitted_optional_images_are_cut_with_their_chain() -> None:
    graph, flow = load("hunyuan_3d")
    patched = patch_graph(graph, flow, {}, {"front_img": "f.png"}, seed=1)
    assert not {"91", "92", "93", "79", "81", "83"} & patched.keys()
    multiview = patched["65"]["inputs"]
    assert "front" in multiview and not {"left", "right", "back"} & multiview.keys()
    assert "67" in patched  # the SaveGLB output survives
    check_graph(patched)  # no link points at a removed node


def test_given_optional_image_is_kept() -> None:
    graph, flow = load("hunyuan_3d")
    patched = patch_graph(graph, flow, {}, {"front_img": "f.png", "left_img": "l.png"}, seed=1)
    assert patched["91"]["inputs"]["image"] == "l.png"
    assert patched["65"]["inputs"]["left"] == ["79", 0]
    assert "92" not in patched


def test_optional_context_mask_is_cut_at_the_optional_input() -> None:
    graph, flow = load("colorful_xl_inpaint")
    values = validate_inputs(flow, {"prompt": "p"}, {"source_image", "mask_redraw"})
    patched = patch_graph(graph, flow, values, {"source_image": "s.png", "mask_redraw": "m.png"}, seed=1)
    assert not {"329", "333", "334"} & patched.keys()
    assert "optional_context_mask" not in patched["319"]["inputs"]
    assert patched["319"]["inputs"]["image"] == ["327", 0] and patched["319"]["inputs"]["mask"] == ["332", 0]
    assert patched["327"]["inputs"]["image"] == "s.png" and patched["328"]["inputs"]["image"] == "m.png"
    check_graph(patched)


def test_required_inputs_cascade_by_default_and_the_predicate_can_say_otherwise() -> None:
    graph, flow = load("ask_ai_internal")
    files = {"image_2": "2.png", "image_3": "3.png"}
    # ComfyUI's ImageBatch requires both images: without image_1 the first batch goes, and (as
    # Visionatrix bridges a pass-through node left with one input) the second batch takes image_2
    patched = patch_graph(graph, flow, {"prompt": "p"}, files, seed=1)
    assert not {"65", "66"} & patched.keys()
    assert patched["67"]["inputs"] == {"image1": ["68", 0], "image2": ["69", 0]}
    assert patched["38"]["inputs"]["images"] == ["67", 0] and patched["71"]["inputs"]["image_1"] == ["67", 0]
    check_graph(patched)
    # only image_1: both batches are bridged, the LLM nodes read image_1 directly
    patched = patch_graph(graph, flow, {"prompt": "p"}, {"image_1": "1.png"}, seed=1)
    assert not {"66", "67", "68", "69"} & patched.keys()
    assert patched["38"]["inputs"]["images"] == ["65", 0] and patched["71"]["inputs"]["image_1"] == ["65", 0]
    # no image at all: nothing is left to bridge, the optional image inputs are cut
    patched = patch_graph(graph, flow, {"prompt": "p"}, {}, seed=1)
    assert not {"65", "66", "67", "68", "69"} & patched.keys()
    assert "images" not in patched["38"]["inputs"] and "image_1" not in patched["71"]["inputs"]

    def batch_inputs_optional(class_type: str, name: str) -> bool:
        return class_type == "ImageBatch"

    patched = patch_graph(graph, flow, {"prompt": "p"}, files, seed=1, is_optional=batch_inputs_optional)
    assert "65" not in patched and patched["66"]["inputs"] == {"image2": ["68", 0]}
    assert patched["38"]["inputs"]["images"] == ["67", 0]


def test_cut_that_removes_an_output_is_refused() -> None:
    graph = {
        "1": {"class_type": "VixUiWorkflowMetadata", "inputs": {"name": "tiny"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": ""}, "_meta": {"title": "input;Pic;optional"}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}},
    }
    flow = parse_flow(graph)
    with pytest.raises(InvalidInput, match="optional input 'in_param_2' cannot be left out: output node.* 4"):
        patch_graph(graph, flow, {}, {}, seed=None)
    assert patch_graph(graph, flow, {}, {"in_param_2": "p.png"}, seed=None)["2"]["inputs"]["image"] == "p.png"


def test_flow_declared_seed_input_wins_and_linked_seeds_stay() -> None:
    graph = {
        "1": {"class_type": "VixUiWorkflowMetadata", "inputs": {"name": "tiny"}},
        "2": {
            "class_type": "VixUiRangeInt",
            "inputs": {"value": 7, "min": 0, "max": 100, "step": 1, "custom_id": "seed", "optional": True},
        },
        "3": {"class_type": "KSampler", "inputs": {"seed": ["2", 0], "steps": 4}},
        "4": {"class_type": "RandomNoise", "inputs": {"noise_seed": 11}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}},
    }
    flow = parse_flow(graph)
    patched = patch_graph(graph, flow, {"seed": 9}, {}, seed=1234)
    assert patched["2"]["inputs"]["value"] == 9
    assert patched["3"]["inputs"]["seed"] == ["2", 0] and patched["4"]["inputs"]["noise_seed"] == 11

    del graph["2"]
    graph["3"]["inputs"]["seed"] = ["4", 0]
    patched = patch_graph(graph, parse_flow(graph), {}, {}, seed=1234)
    assert patched["3"]["inputs"]["seed"] == ["4", 0] and patched["4"]["inputs"]["noise_seed"] == 1234


def test_cut_node_reports_what_it_removed() -> None:
    graph, _ = load("photomaker_2")
    removed = cut_node(graph, "240")
    assert removed == {"240": "LoadImage", "242": "AutoCropFaces"}
    assert "image_3" not in graph["254"]["inputs"] and "image_4" in graph["254"]["inputs"]


@pytest.mark.parametrize("path", sorted(FLOWS_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_fixture_patches_to_a_valid_graph(path: Path) -> None:
    graph, flow = load_flow_file(path)
    values, files = required_form(flow)
    patched = patch_graph(graph, flow, validate_inputs(flow, values, set(files)), files, seed=77)
    check_graph(patched)
    assert {str(o.comfy_node_id) for o in flow.outputs} <= patched.keys()
    for name, file_name in files.items():
        node_id, (_, field) = next(iter(flow.input_param(name).comfy_node_id.items()))  # type: ignore[union-attr]
        assert patched[node_id]["inputs"][field] == file_name
    if flow.is_seed_supported:
        assert all(v == 77 for v in seeds(patched).values() if isinstance(v, int))
