"""The flow catalog's locations (FLOWS_URL, MODELS_CATALOG_URL): a real HTTP server serving a zip,
local zips and folders, merging by version, ETag revalidation, and updates picked up after the TTL."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support import FIXTURES
from visionatrix.flows.parser import parse_flow
from visionatrix.flows.sources import CatalogSources, shipped_flows
from visionatrix.testing.file_server import FileServer

FIXTURE_FLOWS = FIXTURES / "vixflows" / "flows"


def flow(name: str, version: str = "1.0.0", text: str = "") -> dict[str, Any]:
    return {
        "1": {
            "class_type": "VixUiPrompt",
            "inputs": {"text": text, "display_name": "Prompt", "custom_id": "prompt", "order": 1},
            "_meta": {"title": "VixUI-Prompt"},
        },
        "9": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}, "_meta": {"title": "Save"}},
        "10": {
            "class_type": "VixUiWorkflowMetadata",
            "inputs": {"name": name, "display_name": name, "version": version, "tags": "[]"},
            "_meta": {"title": "meta"},
        },
    }


def zipped(*flows: dict[str, Any], extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for graph in flows:
            name = graph["10"]["inputs"]["name"]
            archive.writestr(f"flows/{name}.json", json.dumps(graph))
        for member, data in (extra or {}).items():
            archive.writestr(member, data)
    return buffer.getvalue()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def versions(flows: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: parse_flow(graph).version for name, graph in flows.items()}


def test_the_shipped_catalog_is_the_fixture_catalog_unchanged() -> None:
    shipped = shipped_flows()
    fixtures = {p.stem: json.loads(p.read_text()) for p in FIXTURE_FLOWS.glob("*.json")}
    assert len(fixtures) == 52
    assert set(shipped) == set(fixtures) | {"remove_background_u2netp"}
    for name, graph in fixtures.items():
        assert shipped[name] == graph, name


def test_a_remote_zip_replaces_the_catalog_and_revalidates_with_its_etag() -> None:
    clock = Clock()
    with FileServer() as server:
        url = server.add("/catalog/flows.zip", zipped(flow("alpha"), extra={"README.md": b"not a flow"}))
        sources = CatalogSources(url, ttl=60, clock=clock)
        assert versions(asyncio.run(sources.flows())) == {"alpha": "1.0.0"}
        first = server.requests[-1]
        assert first.if_none_match is None

        clock.now += 61  # stale: asked again, with the ETag; the server answers 304
        assert versions(asyncio.run(sources.flows())) == {"alpha": "1.0.0"}
        assert server.requests[-1].if_none_match is not None and len(server.requests) == 2

        server.add("/catalog/flows.zip", zipped(flow("alpha", "1.1.0"), flow("beta")))
        clock.now += 30  # fresh: nothing is fetched, the old catalog stands
        assert versions(asyncio.run(sources.flows())) == {"alpha": "1.0.0"}
        assert len(server.requests) == 2
        clock.now += 31  # stale again: the update is picked up without a restart
        assert versions(asyncio.run(sources.flows())) == {"alpha": "1.1.0", "beta": "1.0.0"}
        assert sources.errors == []


def test_a_url_ending_in_a_slash_gets_flows_zip_and_builtin_extends() -> None:
    with FileServer() as server:
        server.add("/docs/flows.zip", zipped(flow("sdxl_lighting", "99.0.0"), flow("my_flow")))
        sources = CatalogSources(f"builtin;{server.base_url}/docs/", ttl=60)
        found = asyncio.run(sources.flows())
    assert versions(found)["my_flow"] == "1.0.0"
    assert versions(found)["sdxl_lighting"] == "99.0.0", "the higher version wins"
    assert (
        versions(found)["remove_background_birefnet"]
        == parse_flow(shipped_flows()["remove_background_birefnet"]).version
    )
    assert "remove_background_birefnet" in found and len(found) == 53 + 1


def test_a_lower_or_equal_version_does_not_replace_an_earlier_one(tmp_path: Path) -> None:
    shipped_version = shipped_flows()["sdxl_lighting"]
    (tmp_path / "old.zip").write_bytes(zipped(flow("sdxl_lighting", "0.1.0")))
    found = asyncio.run(CatalogSources(f"builtin;file://{tmp_path / 'old.zip'}").flows())
    assert found["sdxl_lighting"] == shipped_version


def test_a_failing_location_keeps_its_last_good_catalog() -> None:
    clock = Clock()
    with FileServer() as server:
        url = server.add("/flows.zip", zipped(flow("alpha")))
        sources = CatalogSources(url, ttl=1, clock=clock)
        assert list(asyncio.run(sources.flows())) == ["alpha"]
        server.add("/flows.zip", b"", status=503)
        clock.now += 2
        assert list(asyncio.run(sources.flows())) == ["alpha"]
        assert sources.errors and "HTTP 503" in sources.errors[0]
        server.add("/flows.zip", b"this is no zip")
        clock.now += 2
        assert list(asyncio.run(sources.flows())) == ["alpha"]
        assert "zip" in sources.errors[0].lower() or "json" in sources.errors[0].lower()


def test_a_local_folder_is_reread_when_its_files_change(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "a.json").write_text(json.dumps(flow("alpha")))
    (tmp_path / "broken.json").write_text("{not json")
    sources = CatalogSources(str(tmp_path), ttl=5, clock=clock)
    assert versions(asyncio.run(sources.flows())) == {"alpha": "1.0.0"}
    (tmp_path / "nested" / "a.json").write_text(json.dumps(flow("alpha", "2.0.0", text="longer text")))
    clock.now += 6
    assert versions(asyncio.run(sources.flows())) == {"alpha": "2.0.0"}


def test_a_models_catalog_url_adds_entries(tmp_path: Path) -> None:
    entry = {
        "regexes": [{"input_value": "(?i)^my_model\\.safetensors$"}],
        "url": "https://example.invalid/my_model.safetensors",
        "hash": "ab" * 32,
        "file_size": 10,
        "types": ["checkpoints"],
        "architecture": "sdxl",
    }
    with FileServer() as server:
        server.add("/models/models_catalog.json", json.dumps({"My-Model": entry}).encode())
        models = asyncio.run(CatalogSources(models_catalog_url=f"{server.base_url}/models/").models())
    assert models["My-Model"].kind == "sdxl" and models["My-Model"].folder == "checkpoints"
    assert models["SDXL_lightning_4step"].kind == "sdxl", "the shipped entries stay"


@pytest.mark.parametrize("spec", ["nowhere/flows.zip", "http://127.0.0.1:9/flows.zip"])
def test_an_unreachable_location_gives_an_empty_catalog_and_an_error(spec: str) -> None:
    sources = CatalogSources(spec)
    assert asyncio.run(sources.flows()) == {}
    assert len(sources.errors) == 1
