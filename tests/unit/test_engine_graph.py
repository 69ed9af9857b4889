"""engine.graph: parsing, link normalisation, topological order, cycle and dangling-link errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import FIXTURES
from visionatrix.engine.graph import is_link, parse_graph, upstream
from visionatrix.errors import InvalidInput

FLOWS_DIR = FIXTURES / "vixflows" / "flows"


def _node(class_type: str, **inputs: object) -> dict[str, object]:
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": class_type}}


def _assert_topological(graph) -> None:  # type: ignore[no-untyped-def]
    position = {nid: i for i, nid in enumerate(graph.order)}
    assert sorted(position) == sorted(graph.nodes)
    for node in graph.nodes.values():
        for source, _ in node.links.values():
            assert position[source] < position[node.id], f"{source} must come before {node.id}"


def test_links_with_int_ids_are_normalised_to_str() -> None:
    graph = parse_graph({10: _node("B", image=[2, 0]), "2": _node("A", value=3)})
    assert set(graph.nodes) == {"10", "2"}
    assert graph["10"].links == {"image": ("2", 0)}
    assert graph["2"].links == {}
    assert graph["2"].inputs == {"value": 3}


def test_order_puts_sources_first_and_numeric_ids_numerically() -> None:
    raw = {
        "10": _node("Save", images=["9", 0]),
        "9": _node("Invert", image=["2", 0]),
        "2": _node("Load"),
        "11": _node("Other"),
        "1": _node("Other"),
    }
    graph = parse_graph(raw)
    _assert_topological(graph)
    # independent nodes keep numeric order: "2" (not "11") runs right after "1"
    assert graph.order == ("1", "2", "9", "10", "11")
    assert graph.sinks() == ["1", "10", "11"]


def test_cycle_is_refused_naming_its_nodes() -> None:
    raw = {
        "1": _node("A", x=["3", 0]),
        "2": _node("B", x=["1", 0]),
        "3": _node("C", x=["2", 0]),
        "4": _node("D", x=["3", 0]),  # downstream of the cycle, not part of it
        "5": _node("E"),
    }
    with pytest.raises(InvalidInput) as err:
        parse_graph(raw)
    message = err.value.message
    assert "cycle" in message
    named = message.split("nodes ", 1)[1].split(" -> ")
    assert set(named) == {"1", "2", "3"} and named[0] == named[-1]
    assert "4" not in named and "5" not in named


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(InvalidInput, match=r"cycle through nodes 7 -> 7"):
        parse_graph({"7": _node("A", x=["7", 0])})


def test_dangling_link_names_node_and_input() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_graph({"1": _node("SaveImage", images=["42", 0])})
    assert err.value.message == "node 1 (SaveImage): input 'images' links to missing node 42"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({}, "non-empty JSON object"),
        ([1, 2], "non-empty JSON object"),
        ({"1": "LoadImage"}, "node 1: must be an object"),
        ({"1": {"inputs": {}}}, "node 1: 'class_type' must be a non-empty string"),
        ({"1": {"class_type": "X", "inputs": [1]}}, "node 1 (X): 'inputs' must be an object"),
        ({"1": _node("X", a=["1", -1])}, "negative output index"),
    ],
)
def test_malformed_graphs_are_refused_with_the_culprit(raw: object, fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_graph(raw)
    assert fragment in err.value.message


def test_missing_inputs_key_means_no_inputs() -> None:
    assert parse_graph({"1": {"class_type": "X"}})["1"].inputs == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["3", 0], True),
        ([3, 1], True),
        (("3", 0), True),
        (["3", 0.5], False),
        ([True, 0], False),
        (["3", 0, 1], False),
        ("3", False),
        ([1.5, 2], False),
        (["a", False], False),
    ],
)
def test_is_link(value: object, expected: bool) -> None:
    assert is_link(value) is expected


def test_upstream_follows_only_accepted_links() -> None:
    graph = parse_graph(
        {
            "1": _node("A"),
            "2": _node("B"),
            "3": _node("Pick", first=["1", 0], second=["2", 0]),
            "4": _node("Save", images=["3", 0]),
            "5": _node("Unused", x=["1", 0]),
        }
    )
    assert upstream(graph, ["4"]) == {"1", "2", "3", "4"}
    only_first = upstream(graph, ["4"], lambda node, name: name != "second")
    assert only_first == {"1", "3", "4"}


def _real_flows() -> list[Path]:
    return sorted(FLOWS_DIR.glob("*.json")) if FLOWS_DIR.is_dir() else []


@pytest.mark.skipif(not _real_flows(), reason="shared Visionatrix flow fixtures not present")
def test_every_real_flow_parses_in_topological_order() -> None:
    for path in _real_flows():
        graph = parse_graph(json.loads(path.read_text()))
        _assert_topological(graph)
        assert len(graph.order) == len(graph.nodes), path.name
