"""Form values checked and coerced against real flows' input_params."""

from __future__ import annotations

import pytest

from tests.support import FIXTURES
from visionatrix.errors import InvalidInput
from visionatrix.flows.inputs import validate_inputs
from visionatrix.flows.model import Flow
from visionatrix.flows.parser import load_flow_file

FLOWS_DIR = FIXTURES / "vixflows" / "flows"


@pytest.fixture(scope="module")
def flows() -> dict[str, Flow]:
    names = ("sdxl_lighting", "animagine_xl", "colorful_xl", "remove_background_birefnet", "hunyuan_3d")
    names += ("supir_upscaler", "comicu_portrait")
    return {name: load_flow_file(FLOWS_DIR / f"{name}.json")[1] for name in names}


def test_defaults_fill_absent_optional_inputs(flows: dict[str, Flow]) -> None:
    values = validate_inputs(flows["sdxl_lighting"], {"prompt": "a cat"}, set())
    assert values == {
        "prompt": "a cat",
        "steps_number": "8 steps",
        "negative_prompt": "ugly",
        "batch_size": 1,
    }


def test_values_are_coerced_and_unknown_fields_ignored(flows: dict[str, Flow]) -> None:
    form = {"prompt": "a cat", "batch_size": "3", "steps_number": "4 steps", "seed": "7", "whatever": "x"}
    values = validate_inputs(flows["sdxl_lighting"], form, set())
    assert values["batch_size"] == 3 and isinstance(values["batch_size"], int)
    assert values["steps_number"] == "4 steps"
    assert set(values) == {"prompt", "steps_number", "negative_prompt", "batch_size"}


def test_integral_float_text_is_accepted_for_int_range(flows: dict[str, Flow]) -> None:
    values = validate_inputs(flows["sdxl_lighting"], {"prompt": "p", "batch_size": "10.0"}, set())
    assert values["batch_size"] == 10 and isinstance(values["batch_size"], int)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", r"'batch_size' must be within 1\.\.10, got '0'"),
        ("11", r"within 1\.\.10"),
        ("2.5", r"'batch_size' must be a whole number \(range 1\.\.10\)"),
        ("many", r"'batch_size' must be a number \(range 1\.\.10\)"),
        ("", r"'batch_size' must be a number"),
    ],
)
def test_bad_int_range_names_param_and_range(flows: dict[str, Flow], value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_inputs(flows["sdxl_lighting"], {"prompt": "p", "batch_size": value}, set())


def test_float_range(flows: dict[str, Flow]) -> None:
    flow = flows["animagine_xl"]  # prompt_strength: 4..7, default 4.5
    assert validate_inputs(flow, {"prompt": "p", "prompt_strength": "5.5"}, set())["prompt_strength"] == 5.5
    assert validate_inputs(flow, {"prompt": "p"}, set())["prompt_strength"] == 4.5
    for bad in ("nan", "inf", "7.01"):
        with pytest.raises(InvalidInput, match="'prompt_strength'"):
            validate_inputs(flow, {"prompt": "p", "prompt_strength": bad}, set())


def test_list_value_must_be_an_option(flows: dict[str, Flow]) -> None:
    with pytest.raises(
        InvalidInput, match=r"'steps_number' must be one of '4 steps', '8 steps'; got '16 steps'"
    ):
        validate_inputs(flows["sdxl_lighting"], {"prompt": "p", "steps_number": "16 steps"}, set())


def test_aspect_ratio_list(flows: dict[str, Flow]) -> None:
    flow = flows["animagine_xl"]
    assert validate_inputs(flow, {"prompt": "p", "aspect_ratio": "16:9 (1344x768)"}, set())[
        "aspect_ratio"
    ] == ("16:9 (1344x768)")
    with pytest.raises(InvalidInput, match="'aspect_ratio' must be one of"):
        validate_inputs(flow, {"prompt": "p", "aspect_ratio": "16:9"}, set())


def test_dict_list_takes_labels_not_values(flows: dict[str, Flow]) -> None:
    flow = flows["supir_upscaler"]
    form = {"scale_factor": "1.5", "in_param_125": "Sharp"}
    values = validate_inputs(flow, form, {"image_to_upscale"})
    assert values["in_param_125"] == "Sharp" and values["scale_factor"] == 1.5
    with pytest.raises(InvalidInput, match="'in_param_125' must be one of 'Soft', 'Sharp'"):
        validate_inputs(flow, {**form, "in_param_125": "TiledRestoreEDMSampler"}, {"image_to_upscale"})
    with pytest.raises(InvalidInput, match=r"'scale_factor' must be within 1\.1\.\.3\.0"):
        validate_inputs(flow, {**form, "scale_factor": "4"}, {"image_to_upscale"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("0", False), ("true", True), ("False", False), ("ON", True), ("off", False), (True, True)],
)
def test_bool_spellings(flows: dict[str, Flow], text: str | bool, expected: bool) -> None:
    values = validate_inputs(flows["colorful_xl"], {"prompt": "p", "fast_run": text}, set())
    assert values["fast_run"] is expected


def test_bad_bool(flows: dict[str, Flow]) -> None:
    with pytest.raises(
        InvalidInput, match=r"'fast_run' must be a boolean \(1/0, true/false, on/off\), got 'maybe'"
    ):
        validate_inputs(flows["colorful_xl"], {"prompt": "p", "fast_run": "maybe"}, set())


def test_missing_required_text(flows: dict[str, Flow]) -> None:
    with pytest.raises(InvalidInput, match="missing required input 'prompt'"):
        validate_inputs(flows["sdxl_lighting"], {"negative_prompt": "x"}, set())


def test_missing_required_list_names_its_options(flows: dict[str, Flow]) -> None:
    with pytest.raises(
        InvalidInput, match=r"missing required input 'in_param_396' \(list, one of 'girl', 'boy'"
    ):
        validate_inputs(flows["comicu_portrait"], {}, {"person_face"})


def test_required_file_is_satisfied_by_provided_files(flows: dict[str, Flow]) -> None:
    flow = flows["remove_background_birefnet"]
    with pytest.raises(InvalidInput, match="missing required input 'input_image' \\(image\\)"):
        validate_inputs(flow, {}, set())
    # A text field of the same name does not count as the file.
    with pytest.raises(InvalidInput, match="'input_image'"):
        validate_inputs(flow, {"input_image": "x.png"}, set())
    assert validate_inputs(flow, {}, {"input_image"}) == {}


def test_optional_files_may_be_absent(flows: dict[str, Flow]) -> None:
    assert validate_inputs(flows["hunyuan_3d"], {}, {"front_img"}) == {}
    with pytest.raises(InvalidInput, match="'front_img'"):
        validate_inputs(flows["hunyuan_3d"], {}, {"left_img", "right_img"})


def test_text_keeps_value_as_given(flows: dict[str, Flow]) -> None:
    values = validate_inputs(flows["sdxl_lighting"], {"prompt": "  spaced  ", "negative_prompt": ""}, set())
    assert values["prompt"] == "  spaced  " and values["negative_prompt"] == ""
