"""The per-flow API in /openapi.json: each installed flow's create route with its fields exactly as
its flow file declares them, kept in step with installs and removals; offline /docs and /redoc."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import FIXTURES, Server, png_bytes

FIXTURE_FLOWS = FIXTURES / "vixflows" / "flows"
pytestmark = pytest.mark.skipif(
    not FIXTURE_FLOWS.is_dir(), reason=f"fixture flows not found at {FIXTURE_FLOWS}"
)

RESERVED = [
    "count",
    "seed",
    "priority",
    "group_scope",
    "webhook_url",
    "webhook_headers",
    "translate",
    "child_task",
]
FLOWS_UNDER_TEST = ["sdxl_lighting", "remove_background_birefnet"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from visionatrix.testing.tiny_models import write_tiny_models

    workdir = tmp_path_factory.mktemp("openapi")
    # installing reads the models' headers; these tests never run them (no worker)
    write_tiny_models(workdir / "models", flows=FLOWS_UNDER_TEST)
    server = Server(workdir, f"sqlite:///{workdir / 'vix.db'}", local_workers=0)
    server.start()
    try:
        server.install(FIXTURE_FLOWS / "sdxl_lighting.json")
        server.install(FIXTURE_FLOWS / "remove_background_birefnet.json")
        yield server
    finally:
        server.stop()


def _operation(schema: dict[str, Any], flow: str) -> dict[str, Any]:
    return schema["paths"][f"/vapi/tasks/create/{flow}"]["put"]  # type: ignore[no-any-return]


def _body(schema: dict[str, Any], flow: str) -> dict[str, Any]:
    return _operation(schema, flow)["requestBody"]["content"]["multipart/form-data"]["schema"]  # type: ignore[no-any-return]


def _without_descriptions(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: {k: v for k, v in f.items() if k != "description"} for name, f in fields.items()}


def test_sdxl_lighting_fields_are_those_of_its_flow_file(server: Server) -> None:
    with server.client() as http:
        schema = http.get("/openapi.json").json()
    body = _body(schema, "sdxl_lighting")
    task_fields = [*RESERVED, "surprise_me"]  # it has a prompt and a count: Surprise Me applies
    flow_fields = {name: field for name, field in body["properties"].items() if name not in task_fields}
    # the flow file's VixUiPrompt "prompt", VixUiListLogic "steps_number", VixUiPrompt
    # "negative_prompt" and VixUiRangeInt "batch_size"
    assert _without_descriptions(flow_fields) == {
        "prompt": {"title": "Prompt", "type": "string"},
        "steps_number": {
            "title": "Number of steps",
            "type": "string",
            "enum": ["4 steps", "8 steps"],
            "default": "8 steps",
        },
        "negative_prompt": {"title": "Negative Prompt", "type": "string", "default": "ugly"},
        "batch_size": {"title": "Batch size", "type": "integer", "minimum": 1, "maximum": 10, "default": 1},
    }
    assert list(body["properties"]) == [*flow_fields, *task_fields], "flow inputs in order, then task fields"
    assert body["required"] == ["prompt"]
    assert "Translated to English" in flow_fields["prompt"]["description"]
    assert "Advanced" in flow_fields["steps_number"]["description"]
    assert "Hidden" in flow_fields["batch_size"]["description"]
    reserved = body["properties"]
    assert (reserved["count"]["minimum"], reserved["count"]["maximum"], reserved["count"]["default"]) == (
        1,
        100,
        1,
    )
    assert (reserved["priority"]["minimum"], reserved["priority"]["maximum"]) == (0, 15)
    assert (reserved["group_scope"]["minimum"], reserved["group_scope"]["maximum"]) == (1, 255)
    assert reserved["seed"]["type"] == "integer" and "default" not in reserved["seed"]
    assert reserved["translate"] == {
        "anyOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}],
        "default": False,
        "description": "Translate non-English prompts first (when a translations_provider is set).",
    }
    assert reserved["surprise_me"]["enum"] == [0, 1]
    operation = _operation(schema, "sdxl_lighting")
    assert operation["operationId"] == "create_task_sdxl_lighting" and operation["tags"] == ["flows API"]
    assert operation["summary"] == "Create a SDXL Lighting task"
    assert set(operation["responses"]) == {"200", "400", "401", "404", "412", "502", "504"}


def test_remove_background_birefnet_takes_one_image(server: Server) -> None:
    with server.client() as http:
        body = _body(http.get("/openapi.json").json(), "remove_background_birefnet")
    field = body["properties"]["input_image"]
    assert {k: v for k, v in field.items() if k != "description"} == {
        "title": "Input image",
        "type": "string",
        "format": "binary",
    }
    assert '{"task_id": X, "node_id": N}' in field["description"]
    assert body["required"] == ["input_image"]
    assert list(body["properties"]) == ["input_image", *RESERVED]
    assert "This flow does not use seeds" in body["properties"]["seed"]["description"]


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ({"prompt": "a cat"}, 200),
        ({"prompt": "a cat", "batch_size": "10", "steps_number": "4 steps", "priority": "15"}, 200),
        ({"prompt": "a cat", "batch_size": "11"}, 400),
        ({"prompt": "a cat", "batch_size": "0"}, 400),
        ({"prompt": "a cat", "steps_number": "9 steps"}, 400),
        ({"prompt": "a cat", "priority": "16"}, 400),
        ({"prompt": "a cat", "webhook_url": "ftp://x"}, 400),
        ({"negative_prompt": "no prompt given"}, 400),
        ({"prompt": "a cat", "surprise_me": "1"}, 412),  # no llm_provider is set up here
    ],
)
def test_the_schema_s_limits_are_the_server_s(server: Server, values: dict[str, str], status: int) -> None:
    with server.client() as http:
        answer = http.put("/vapi/tasks/create/sdxl_lighting", data=values)
        assert answer.status_code == status, answer.text
        if status == 200:
            for task_id in answer.json()["tasks_ids"]:
                http.delete("/vapi/tasks/task", params={"task_id": task_id})


def test_the_routes_follow_installs_and_removals(server: Server) -> None:
    with server.client() as http:
        before = http.get("/openapi.json").json()["paths"]
        assert "/vapi/tasks/create/invert_image" not in before
        assert "/vapi/tasks/create/remove_background_u2netp" not in before, "only installed flows"
        server.install(Path(__file__).parents[1] / "flows" / "invert_image.json")
        assert "/vapi/tasks/create/invert_image" in http.get("/openapi.json").json()["paths"]
        assert http.delete("/vapi/flows/flow", params={"name": "invert_image"}).status_code == 204
        assert "/vapi/tasks/create/invert_image" not in http.get("/openapi.json").json()["paths"]
        created = http.put(
            "/vapi/tasks/create/remove_background_birefnet",
            files={"input_image": ("p.png", png_bytes(), "image/png")},
        )
        assert created.status_code == 200
        http.delete("/vapi/tasks/task", params={"task_id": created.json()["tasks_ids"][0]})


def test_docs_and_redoc_are_served_from_this_server(server: Server) -> None:
    with server.client() as http:
        for page in ("/docs", "/redoc"):
            html = http.get(page).text
            sources = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert sources and all(s.startswith("/") for s in sources), (
                f"{page} loads only local files: {sources}"
            )
            for source in sources:
                asset = http.get(source)
                assert asset.status_code == 200 and len(asset.content) > 100, source
        assert "SwaggerUIBundle" in http.get("/docs/assets/swagger-ui-bundle.js").text
        assert "Apache License" in http.get("/docs/assets/swagger-ui.LICENSE").text
        assert http.get("/docs/assets/nope.js").status_code == 404
    assert httpx.get(f"{server.url}/docs/assets/..%2F..%2Fconfig.py").status_code == 404
