"""Whether this server can run a flow, and every reason it cannot, judged on the real catalog flows."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.support import FIXTURES
from tests.unit.test_model_architecture import SDXL_KEYS, write_header
from visionatrix.engine import sampling_names
from visionatrix.flows.parser import parse_flow
from visionatrix.flows.runnable import assess
from visionatrix.models.catalog import entry_from_dict, load_builtin_catalog

FIXTURE_FLOWS = FIXTURES / "vixflows" / "flows"
CATALOG = load_builtin_catalog()


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURE_FLOWS / f"{name}.json").read_text())


def test_the_sampling_names_are_the_engines() -> None:
    from visionatrix.engine.sampling import samplers, schedulers

    assert set(sampling_names.SAMPLER_NAMES) == set(samplers.SAMPLERS)
    assert set(sampling_names.SCHEDULER_NAMES) == set(schedulers.SCHEDULERS)


def test_an_sdxl_flow_runs_and_its_checkpoint_takes_the_catalog_name(tmp_path: Path) -> None:
    graph = fixture("animagine_xl")
    verdict = assess(graph, CATALOG, tmp_path)
    assert verdict.runnable and verdict.reasons == []
    assert verdict.graph["2"]["inputs"]["ckpt_name"] == "animagine-xl-4.0-opt.safetensors"
    assert graph["2"]["inputs"]["ckpt_name"] == "animagineXL40_v4Opt.safetensors", "the input stays as it was"


def test_an_unknown_sampler_is_named_with_its_node(tmp_path: Path) -> None:
    graph = fixture("realvis_xl")
    graph["27"]["inputs"]["sampler_name"] = "res_multistep"  # ComfyUI has it, this engine not (yet)
    verdict = assess(graph, CATALOG, tmp_path)
    assert verdict.reasons == [
        "sampler 'res_multistep' (node 27 KSampler) is not implemented here (implemented: "
        + ", ".join(sampling_names.SAMPLER_NAMES)
        + ")"
    ]


def test_each_reason_is_listed(tmp_path: Path) -> None:
    reasons = assess(fixture("auraflow"), CATALOG, tmp_path).reasons
    assert reasons == [
        "node classes this engine does not implement: ModelSamplingAuraFlow",
        "node 1 CheckpointLoaderSimple.ckpt_name: aura_flow_0.3.safetensors (AuraFlow-v0.3) is AuraFlow"
        " (by the model catalog), but this node loads only Flux.1 or Playground v2.5 (SDXL with the EDM"
        " latent format) or SDXL or SDXL with v-prediction",
    ]


def test_an_architecture_no_loader_takes_is_refused(tmp_path: Path) -> None:
    reasons = assess(fixture("hunyuan_dit"), CATALOG, tmp_path).reasons
    assert len(reasons) == 1 and "is Hunyuan-DiT (by the model catalog)" in reasons[0]


def test_rmbg_2_and_the_juggernaut_vae_and_lora_are_loaded_here(tmp_path: Path) -> None:
    for name in ("remove_background_bria", "juggernaut_xl", "colorful_xl", "mobius_xl"):
        verdict = assess(fixture(name), CATALOG, tmp_path)
        assert verdict.runnable, (name, verdict.reasons)


def with_sampler_list(default: str) -> dict[str, Any]:
    graph = fixture("animagine_xl")
    graph["300"] = {
        "class_type": "VixUiList",
        "inputs": {
            "default_value": default,
            "possible_values": json.dumps(
                {"Euler": "euler", "Res multistep": "res_multistep", "DPM++ 2M": "dpmpp_2m"}
            ),
            "display_name": "Sampler",
            "optional": True,
            "advanced": True,
            "order": 50,
            "custom_id": "sampler",
        },
        "_meta": {"title": "VixUI-List"},
    }
    graph["27"]["inputs"]["sampler_name"] = ["300", 0]
    return graph


def test_a_sampler_list_whose_default_runs_loses_the_choices_that_do_not(tmp_path: Path) -> None:
    verdict = assess(with_sampler_list("Euler"), CATALOG, tmp_path)
    assert verdict.runnable
    assert verdict.removed_options == {"sampler": ["Res multistep"]}
    options = parse_flow(verdict.graph).input_param("sampler").options  # type: ignore[union-attr]
    assert options == {"Euler": "euler", "DPM++ 2M": "dpmpp_2m"}


def test_a_sampler_list_whose_default_fails_is_refused(tmp_path: Path) -> None:
    verdict = assess(with_sampler_list("Res multistep"), CATALOG, tmp_path)
    assert verdict.reasons == [
        "sampler 'res_multistep' (node 300 VixUiList default) is not implemented here (implemented: "
        + ", ".join(sampling_names.SAMPLER_NAMES)
        + ")"
    ]


def test_a_file_on_disk_is_judged_by_its_header_not_the_catalog(tmp_path: Path) -> None:
    target = tmp_path / "checkpoints" / "animagine-xl-4.0-opt.safetensors"
    target.parent.mkdir()
    sd1 = {k for k in SDXL_KEYS if k.startswith("model.diffusion_model.") and "label_emb" not in k}
    write_header(target, sorted(sd1 | {"cond_stage_model.transformer.text_model.final_layer_norm.weight"}))
    reasons = assess(fixture("animagine_xl"), CATALOG, tmp_path).reasons
    assert reasons == [
        "node 2 CheckpointLoaderSimple.ckpt_name: animagine-xl-4.0-opt.safetensors (animagine-xl-4.0-opt)"
        " is Stable Diffusion 1.x (by its file header), but this node loads only Flux.1 or Playground v2.5"
        " (SDXL with the EDM latent format) or SDXL or SDXL with v-prediction"
    ]
    write_header(target, sorted(SDXL_KEYS))
    assert assess(fixture("animagine_xl"), CATALOG, tmp_path).runnable
    target.write_bytes(b"garbage!")
    (reason,) = assess(fixture("animagine_xl"), CATALOG, tmp_path).reasons
    assert "an unrecognised architecture (unreadable:" in reason


def test_a_file_in_no_catalog_entry_must_be_on_disk(tmp_path: Path) -> None:
    graph = fixture("animagine_xl")
    graph["2"]["inputs"]["ckpt_name"] = "my_own.safetensors"
    (reason,) = assess(graph, CATALOG, tmp_path).reasons
    assert reason == (
        "node 2 CheckpointLoaderSimple.ckpt_name: my_own.safetensors is in no model catalog entry"
        f" and not at {tmp_path / 'checkpoints' / 'my_own.safetensors'}"
    )
    (tmp_path / "checkpoints").mkdir()
    write_header(tmp_path / "checkpoints" / "my_own.safetensors", sorted(SDXL_KEYS))
    verdict = assess(graph, CATALOG, tmp_path)
    assert verdict.runnable and verdict.graph["2"]["inputs"]["ckpt_name"] == "my_own.safetensors"


def test_a_catalog_that_puts_the_file_elsewhere_is_named(tmp_path: Path) -> None:
    catalog = copy.copy(CATALOG)
    catalog.pop("animagine-xl-4.0-opt")
    catalog["Misplaced"] = entry_from_dict(
        "Misplaced",
        {
            "regexes": [{"input_value": "(?i)animagineXL40_v4Opt\\.safetensors$"}],
            "url": "https://example.invalid/a.safetensors",
            "types": ["loras"],
        },
    )
    (reason,) = assess(fixture("animagine_xl"), catalog, tmp_path).reasons
    assert "the catalog puts a.safetensors (Misplaced) in MODELS_DIR/loras" in reason
    assert reason.endswith("but the node reads MODELS_DIR/checkpoints")


def test_a_model_chosen_at_run_time_cannot_be_checked(tmp_path: Path) -> None:
    graph = with_sampler_list("Euler")
    graph["2"]["inputs"]["ckpt_name"] = ["300", 0]
    (reason,) = assess(graph, CATALOG, tmp_path).reasons
    assert reason.startswith("node 2 CheckpointLoaderSimple.ckpt_name: the model file is chosen at run time")
