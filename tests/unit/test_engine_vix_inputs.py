"""engine.nodes.vix_inputs: the Visionatrix form nodes, checked against how the real flows use them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import FIXTURES
from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.graph import is_link
from visionatrix.engine.registry import lookup
from visionatrix.errors import InvalidInput

FLOWS_DIR = FIXTURES / "vixflows" / "flows"

# The node exactly as sdxl_lighting.json has it: "4 steps" is first and input_first is the 4-step decode.
SDXL_LIGHTING_STEPS = {
    "default_value": "8 steps",
    "possible_values": '["4 steps", "8 steps"]',
    "display_name": "Number of steps",
    "optional": True,
    "advanced": True,
    "order": 20,
    "custom_id": "steps_number",
    "hidden": False,
}

ASPECT_RATIOS = [
    "1:1 (1024x1024)", "2:3 (832x1216)", "3:4 (896x1152)", "5:8 (768x1216)", "9:16 (768x1344)",
    "9:19 (704x1472)", "9:21 (640x1536)", "3:2 (1216x832)", "4:3 (1152x896)", "8:5 (1216x768)",
    "16:9 (1344x768)", "20:11 (1280x704)", "19:9 (1472x704)", "21:9 (1536x640)",
]  # fmt: skip


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    env = RunEnv(models=None, input_dir=tmp_path, output_dir=tmp_path, tmp_dir=tmp_path)  # type: ignore[arg-type]
    return NodeContext(env, "1", "test")


def _node(class_type: str) -> Any:
    cls = lookup(class_type)
    assert cls is not None, class_type
    return cls()


@pytest.mark.parametrize(("choice", "branch"), [("4 steps", "input_first"), ("8 steps", "input_second")])
def test_list_logic_picks_the_branch_at_the_choices_position(
    ctx: NodeContext, choice: str, branch: str
) -> None:
    logic = _node("VixUiListLogic")
    inputs = {**SDXL_LIGHTING_STEPS, "default_value": choice}
    assert logic.needed(**inputs) == [branch]
    assert logic.run(ctx, **inputs, input_first="4-step image", input_second="8-step image") == (
        f"{choice[0]}-step image",
    )


def test_list_logic_supports_a_third_branch_and_names_bad_values(ctx: NodeContext) -> None:
    logic = _node("VixUiListLogic")
    passes = '["One pass", "Two pass", "Three pass"]'
    assert logic.needed(default_value="Three pass", possible_values=passes) == ["input_third"]
    with pytest.raises(
        InvalidInput, match=r"'Four pass' is not one of \['One pass', 'Two pass', 'Three pass'\]"
    ):
        logic.needed(default_value="Four pass", possible_values=passes)
    assert logic.lazy == (
        "input_first",
        "input_second",
        "input_third",
        "input_fourth",
        "input_fifth",
        "input_sixth",
    )


def test_list_passes_the_value_or_maps_it_through_an_object(ctx: NodeContext) -> None:
    plain = _node("VixUiList")
    assert plain.run(ctx, default_value="fp8_e4m3fn", possible_values='["default", "fp8_e4m3fn"]') == (
        "fp8_e4m3fn",
    )
    assert plain.run(ctx, default_value="Fast", possible_values='{"Fast": "euler", "Good": "dpmpp_2m"}') == (
        "euler",
    )
    with pytest.raises(InvalidInput, match="not valid JSON"):
        plain.run(ctx, default_value="x", possible_values="[oops")


@pytest.mark.parametrize(
    ("state", "expected"), [(False, (False, 0)), (True, (True, 1)), ("true", (True, 1)), (0, (False, 0))]
)
def test_checkbox_outputs_bool_and_int(ctx: NodeContext, state: Any, expected: tuple[bool, int]) -> None:
    assert _node("VixUiCheckbox").run(ctx, state=state, display_name="Low memory mode") == expected


def test_checkbox_refuses_values_that_are_not_booleans(ctx: NodeContext) -> None:
    with pytest.raises(InvalidInput, match="'state' must be true or false, got 'maybe'"):
        _node("VixUiCheckbox").run(ctx, state="maybe")


@pytest.mark.parametrize("class_type", ["VixUiCheckboxLogic", "VixCheckboxLogic"])
def test_checkbox_logic_uses_on_and_off_inputs(ctx: NodeContext, class_type: str) -> None:
    logic = _node(class_type)
    assert set(logic.lazy) == {"input_off_state", "input_on_state"}
    assert logic.needed(state=False) == ["input_off_state"]
    assert logic.needed(state=True) == ["input_on_state"]
    assert logic.run(ctx, state=True, input_off_state=None, input_on_state="on") == ("on",)
    assert logic.run(ctx, state=False, input_off_state="off", input_on_state=None) == ("off",)


@pytest.mark.parametrize("label", ASPECT_RATIOS)
def test_aspect_ratio_outputs_ratio_width_height(ctx: NodeContext, label: str) -> None:
    ratio, width, height = _node("VixUiAspectRatioSelector").run(
        ctx, aspect_ratio=label, custom_id="aspect_ratio"
    )
    assert f"{ratio} ({width}x{height})" == label
    assert width % 64 == 0 and height % 64 == 0


def test_aspect_ratio_refuses_an_unknown_shape(ctx: NodeContext) -> None:
    with pytest.raises(InvalidInput, match="'square' is not of the form"):
        _node("VixUiAspectRatioSelector").run(ctx, aspect_ratio="square")


def test_ranges_prompt_and_text_pass_their_value(ctx: NodeContext) -> None:
    assert _node("VixUiRangeInt").run(ctx, value=4.0, min=1, max=10) == (4,)
    assert _node("VixUiRangeFloat").run(ctx, value=7, min=1.0) == (7.0,)
    assert _node("VixUiRangeScaleFloat").run(ctx, value=2, source_input_name="image_to_upscale") == (2.0,)
    assert _node("VixUiPrompt").run(ctx, text="a cat", translatable=True) == ("a cat",)
    assert _node("PrimitiveStringMultiline").run(ctx, value="line 1\nline 2") == ("line 1\nline 2",)
    assert _node("VixUiWorkflowMetadata").run(ctx, name="x", requires="[]") == ()
    with pytest.raises(InvalidInput, match="must be an integer"):
        _node("VixUiRangeInt").run(ctx, value=2.5)


def _real_vix_nodes() -> list[tuple[str, str, dict[str, Any]]]:
    if not FLOWS_DIR.is_dir():
        return []
    found = []
    for path in sorted(FLOWS_DIR.glob("*.json")):
        for node_id, spec in json.loads(path.read_text()).items():
            if lookup(spec["class_type"]) is not None and spec["class_type"].startswith(("Vix", "Primitive")):
                found.append((f"{path.stem}:{node_id}", spec["class_type"], spec["inputs"]))
    return found


@pytest.mark.skipif(not _real_vix_nodes(), reason="shared Visionatrix flow fixtures not present")
def test_every_vix_input_node_of_the_real_flows_runs_on_its_own_values(ctx: NodeContext) -> None:
    for where, class_type, raw in _real_vix_nodes():
        inputs = {name: (f"<{name}>" if is_link(value) else value) for name, value in raw.items()}
        node = _node(class_type)
        if getattr(node, "lazy", ()):
            chosen = node.needed(**{k: v for k, v in inputs.items() if k not in node.lazy})
            assert len(chosen) == 1 and chosen[0] in raw, where
            assert node.run(ctx, **inputs) == (f"<{chosen[0]}>",), where
        else:
            assert isinstance(node.run(ctx, **inputs), tuple), where
