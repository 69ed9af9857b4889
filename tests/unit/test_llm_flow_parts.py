"""The LLM part of the six catalog image flows, run from the unchanged fixture files.

Their image models (Flux, InstantID, PuLID...) do not exist in this engine yet, so the flows cannot
be installed. What can run now is the part that asks the LLM: each flow's form values go through
the real creation path (validate, patch the graph, cut the optional images), then the engine runs
everything the flow's "vision provider" switch reads (LoadImage, ImageScaleToTotalPixels, the
flow's own instructions, OllamaVision / OllamaGenerate / Ask_Gemini, StringConcatenate) with a
SaveText on the switch, against the loopback provider server, for both positions of the switch.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support import FIXTURES
from visionatrix.engine.context import RunEnv
from visionatrix.engine.executor import run_graph
from visionatrix.engine.graph import parse_graph, upstream
from visionatrix.flows.graph_patch import patch_graph
from visionatrix.flows.inputs import validate_inputs
from visionatrix.flows.model import Flow
from visionatrix.flows.parser import load_flow_file
from visionatrix.llm import LLMSettings
from visionatrix.testing.llm_server import LLMServer, echo

FLOWS_DIR = FIXTURES / "vixflows" / "flows"
IMAGE_FLOWS = (
    "animal_clothing",
    "mad_scientist",
    "pencil_sketch_portrait",
    "photo_stickers2",
    "restore_old_photo",
    "to_ghibli",
)
LLM_NODES = {"OllamaVision", "OllamaGenerate", "Ask_Gemini"}
pytestmark = pytest.mark.skipif(not FLOWS_DIR.is_dir(), reason=f"fixture flows not found at {FLOWS_DIR}")


def _switch(graph: dict[str, Any]) -> str:
    """The VixUiCheckboxLogic that picks the Ollama or the Gemini branch."""
    for node_id, node in graph.items():
        inputs = node["inputs"]
        branches = [inputs.get("input_off_state"), inputs.get("input_on_state")]
        if node["class_type"] == "VixUiCheckboxLogic" and all(
            isinstance(b, list) and graph[str(b[0])]["class_type"] in LLM_NODES for b in branches
        ):
            return node_id
    raise AssertionError("no vision provider switch")


def _form(flow: Flow, switch_param: str, gemini: bool) -> dict[str, str]:
    values = {switch_param: "1" if gemini else "0"}
    for param in flow.input_params:
        if not param.is_file and not param.optional and param.name not in values:
            values[param.name] = (
                "a person in a red coat" if param.default in (None, "") else str(param.default)
            )
    return values


def _images(flow: Flow, folder: Path) -> dict[str, str]:
    files = {}
    for n, param in enumerate(p for p in flow.input_params if p.is_file):
        name = f"{param.name}.png"
        buffer = io.BytesIO()
        Image.new("RGB", (48 + 8 * n, 32), (40 * n % 256, 90, 200)).save(buffer, "PNG")
        (folder / name).write_bytes(buffer.getvalue())
        files[param.name] = name
    return files


@pytest.mark.parametrize("gemini", [False, True], ids=["ollama", "gemini"])
@pytest.mark.parametrize("name", IMAGE_FLOWS)
def test_llm_part_of_image_flow(name: str, gemini: bool, tmp_path: Path, llm: LLMServer) -> None:
    graph, flow = load_flow_file(FLOWS_DIR / f"{name}.json")
    switch = _switch(graph)
    switch_param = next(p.name for p in flow.input_params if switch in p.comfy_node_id)
    for folder in ("input", "output", "tmp"):
        (tmp_path / folder).mkdir()
    files = _images(flow, tmp_path / "input")
    values = validate_inputs(flow, _form(flow, switch_param, gemini), set(files))
    patched = patch_graph(graph, flow, values, files, seed=7)
    part = {nid: patched[nid] for nid in upstream(parse_graph(patched), [switch])}
    part["9001"] = {"class_type": "SaveText|pysssss", "inputs": {"text": [switch, 0]}}
    settings = LLMSettings(ollama_url=llm.url, google_api_key=llm.gemini_key, gemini_url=llm.url)
    env = RunEnv(
        models=None,  # type: ignore[arg-type]
        input_dir=tmp_path / "input",
        output_dir=tmp_path / "output",
        tmp_dir=tmp_path / "tmp",
        options={"llm": settings},
    )

    outputs = run_graph(part, env)

    assert llm.seen, "the flow asked no LLM"
    assert {s.provider for s in llm.seen} == {"gemini" if gemini else "ollama"}
    assert any(s.images for s in llm.seen), "the photo never reached the LLM"
    assert all(fmt == ("webp" if gemini else "png") for s in llm.seen for fmt, _size in s.images)
    assert all(s.text.strip() for s in llm.seen), "an LLM node got an empty prompt"
    last = llm.seen[-1]
    assert outputs["9001"][0].read_text(encoding="utf-8") == echo(last)
