"""models.catalog against the real Visionatrix catalog and its 52 real flows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support import FIXTURES as SHARED_FIXTURES
from visionatrix.errors import InvalidInput
from visionatrix.models.catalog import (
    builtin_catalog_path,
    entry_from_dict,
    load_builtin_catalog,
    load_catalog,
    match_graph,
    parse_catalog,
)

FIXTURES = SHARED_FIXTURES / "vixflows"
FLOWS = sorted((FIXTURES / "flows").glob("*.json"))
BUILTIN_FLOWS = Path(__file__).resolve().parents[2] / "visionatrix" / "builtin" / "flows"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared Visionatrix fixtures not present")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(FIXTURES / "models_catalog.json", strict=True)


def _flow(name: str) -> dict:
    return json.loads((FIXTURES / "flows" / f"{name}.json").read_text())


def _files(entries) -> set[str]:
    return {e.relpath for e in entries}


def test_every_catalog_regex_compiles_with_python_re():
    raw = json.loads((FIXTURES / "models_catalog.json").read_text())
    patterns = [p for details in raw.values() for rule in details["regexes"] for p in rule.values()]
    assert len(patterns) > 113
    for pattern in patterns:
        re.compile(pattern)


def test_catalog_places_files_like_visionatrix(catalog):
    assert len(catalog) == 113
    general = catalog["BiRefNet-General"]
    assert (general.folder, general.filename) == ("birefnet", "General.safetensors")
    assert general.hash == "9ab37426bf4de0567af6b5d21b16151357149139362e6e8992021b8ce356a154"
    assert general.file_size == 444473596
    # no "filename": the last part of the URL path
    assert catalog["Lora-Canny-Rank256"].relpath == "controlnet/control-lora-canny-rank256.safetensors"
    # several types: the first one is the folder
    assert catalog["FLUX-1-Schnell"].relpath == "diffusion_models/flux1-schnell.safetensors"
    # no types: the filename is a path relative to the models folder
    rife = catalog["Rife-47"]
    assert (
        rife.folder == "" and rife.relpath == "custom_nodes/comfyui-frame-interpolation/ckpts/rife/rife47.pth"
    )
    assert rife.target(Path("/m")) == Path(
        "/m/custom_nodes/comfyui-frame-interpolation/ckpts/rife/rife47.pth"
    )
    # upper-case hashes in the catalog compare as lower-case hex
    assert catalog["Flux-1D-Ghibli-Lora"].hash == catalog["Flux-1D-Ghibli-Lora"].hash.lower()
    assert sum(e.gated for e in catalog.values()) == 9


def test_sdxl_lighting_needs_both_lightning_checkpoints(catalog):
    entries = match_graph(_flow("sdxl_lighting"), catalog)
    assert _files(entries) == {
        "checkpoints/sdxl_lightning_4step.safetensors",
        "checkpoints/sdxl_lightning_8step.safetensors",
    }


def test_birefnet_flows_need_their_birefnet_weights(catalog):
    assert _files(match_graph(_flow("remove_background_birefnet"), catalog)) == {
        "birefnet/General.safetensors"
    }
    lite = match_graph(_flow("remove_background_birefnet_lite"), catalog)
    assert _files(lite) == {"birefnet/General-Lite.safetensors"}
    assert lite[0].url == "https://huggingface.co/ZhengPeng7/BiRefNet_lite/resolve/main/model.safetensors"


def test_lora_rule_tells_lora_from_checkpoint_by_input_name(catalog):
    # juggernaut_lite loads sdxl_lightning_8step_lora through lora_name: the checkpoint entry must not match
    files = _files(match_graph(_flow("juggernaut_lite"), catalog))
    assert "loras/sdxl_lightning_8step_lora.safetensors" in files
    assert "checkpoints/sdxl_lightning_8step.safetensors" not in files


@pytest.mark.parametrize("flow_path", FLOWS, ids=lambda p: p.stem)
def test_every_fixture_flow_matches_only_real_loader_inputs(flow_path, catalog):
    graph = json.loads(flow_path.read_text())
    entries = match_graph(graph, catalog)
    assert len({e.name for e in entries}) == len(entries)
    for entry in entries:
        users = [
            (node["class_type"], name)
            for node in graph.values()
            for name, value in node.get("inputs", {}).items()
            if isinstance(value, str) and entry.matches(node["class_type"], name, value)
        ]
        assert users, entry.name
        # metadata and UI nodes never pull a model in, whatever their text says
        assert not any(cls.startswith("VixUi") or cls == "SaveImage" for cls, _ in users), (entry.name, users)


def test_fixture_flows_with_loaders_all_find_models(catalog):
    without = [p.stem for p in FLOWS if not match_graph(json.loads(p.read_text()), catalog)]
    assert without == ["ask_ai_internal"]  # an LLM flow served by Ollama, no weight files


def test_class_name_must_match_the_whole_class_type():
    entry = entry_from_dict(
        "cn",
        {"regexes": [{"class_name": "ControlNetLoader", "input_value": ".*"}], "url": "https://x/y/cn.bin"},
    )
    assert entry.matches("ControlNetLoader", "control_net_name", "anything")
    assert not entry.matches("ControlNetLoaderAdvanced", "control_net_name", "anything")


def test_broken_regex_is_dropped_or_refused():
    data = {"bad": {"regexes": [{"input_value": "(?i"}], "url": "https://h/a/b.bin"}}
    assert parse_catalog(data)["bad"].rules == ()
    with pytest.raises(InvalidInput, match="'bad'.*does not compile"):
        parse_catalog(data, strict=True)


def test_entry_without_any_filename_is_refused():
    with pytest.raises(InvalidInput, match="'nameless'"):
        entry_from_dict("nameless", {"regexes": [], "url": "https://host/"})


def test_legacy_save_path_sets_folder_and_filename():
    entry = entry_from_dict(
        "old", {"regexes": [], "url": "https://h/x", "save_path": "controlnet/a/b.safetensors"}
    )
    assert (entry.folder, entry.filename) == ("controlnet", "a/b.safetensors")


def test_builtin_catalog_is_the_fixture_plus_u2netp():
    builtin = load_builtin_catalog(strict=True)
    fixture = json.loads((FIXTURES / "models_catalog.json").read_text())
    raw = json.loads(builtin_catalog_path().read_text())
    assert {k: raw[k] for k in fixture} == fixture
    assert set(raw) - set(fixture) == {"U2NetP"}
    u2 = builtin["U2NetP"]
    assert u2.relpath == "rembg/u2netp.onnx"
    assert u2.url == "https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2netp.onnx"
    assert (builtin_catalog_path().parent / "LICENSE.vixflows").read_text().startswith("MIT License")


def test_builtin_u2netp_flow_needs_only_u2netp():
    graph = json.loads((BUILTIN_FLOWS / "remove_background_u2netp.json").read_text())
    entries = match_graph(graph, load_builtin_catalog())
    assert [e.relpath for e in entries] == ["rembg/u2netp.onnx"]
