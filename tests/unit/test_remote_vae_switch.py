"""The remote-VAE switch of the Flux flows is found by its title, as Visionatrix finds it."""

from __future__ import annotations

import json

from tests.support import FIXTURES
from visionatrix.remote_vae_switch import _flows, switch_nodes


def test_the_switch_of_a_catalog_flow_is_found_by_title() -> None:
    graph = json.loads((FIXTURES / "vixflows" / "flows" / "flux1_dev.json").read_text())
    assert switch_nodes(graph) == ["43"]
    assert graph["43"]["class_type"] == "VixCheckboxLogic" and graph["43"]["inputs"]["state"] is False
    assert switch_nodes({"1": {"class_type": "SaveImage", "inputs": {}}}) == []


def test_the_setting_is_a_json_list_and_anything_else_lists_nothing() -> None:
    assert _flows('["flux1_dev", "flux1_kontext"]') == ["flux1_dev", "flux1_kontext"]
    assert _flows("") == [] and _flows("flux1_dev") == [] and _flows('{"a": 1}') == []
