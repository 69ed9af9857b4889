"""The HTTP contract is snapshotted: a route or schema change must show up as a reviewed diff
of docs/openapi.json (regenerate it with scripts/openapi)."""

from __future__ import annotations

import json
from pathlib import Path

from visionatrix.api.app import create_app
from visionatrix.config import Config

SNAPSHOT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_openapi_matches_the_committed_snapshot() -> None:
    current = json.loads(json.dumps(create_app(Config()).openapi(), sort_keys=True))
    assert current == json.loads(SNAPSHOT.read_text()), "API changed: run scripts/openapi and review the diff"


def test_every_api_md_route_is_served() -> None:
    paths = create_app(Config()).openapi()["paths"]
    expected = {
        ("put", "/vapi/tasks/create/{flow_name}"),
        ("get", "/vapi/tasks/progress/{task_id}"),
        ("get", "/vapi/tasks/progress"),
        ("get", "/vapi/tasks/progress-summary"),
        ("get", "/vapi/tasks/results"),
        ("post", "/vapi/tasks/restart"),
        ("delete", "/vapi/tasks/task"),
        ("delete", "/vapi/tasks/queue/{task_id}"),
        ("delete", "/vapi/tasks/queue"),
        ("delete", "/vapi/tasks/clear"),
        ("put", "/vapi/tasks/update"),
        ("get", "/vapi/tasks/inputs"),
        ("put", "/vapi/tasks/create-sync/{flow_name}"),
        ("post", "/vapi/tasks/next"),
        ("put", "/vapi/tasks/progress"),
        ("put", "/vapi/tasks/results"),
        ("delete", "/vapi/tasks/lock"),
        ("get", "/vapi/workers/info"),
        ("post", "/vapi/workers/settings"),
        ("get", "/vapi/flows/installed"),
        ("get", "/vapi/flows/not-installed"),
        ("post", "/vapi/flows/flow"),
        ("get", "/vapi/flows/install-progress"),
        ("put", "/vapi/flows/flow"),
        ("delete", "/vapi/flows/flow"),
        ("get", "/vapi/other/whoami"),
        ("get", "/vapi/settings/get"),
        ("post", "/vapi/settings/global"),
        ("post", "/vapi/settings/user"),
    }
    served = {(method, path) for path, item in paths.items() for method in item}
    assert expected <= served, expected - served
