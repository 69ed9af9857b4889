"""Bad input gets a 4xx whose detail names the problem; never a 500."""

from __future__ import annotations

import json

from tests.support import FLOWS, Server, png_bytes

IMAGE = {"input_image": ("a.png", png_bytes(), "image/png")}


BAD_CREATES = [
    ({}, {}, "input_image"),
    ({}, {"input_image": ("a.png", b"not an image at all", "image/png")}, "not a valid image"),
    ({"count": "0"}, IMAGE, "count"),
    ({"count": "many"}, IMAGE, "count"),
    ({"priority": "16"}, IMAGE, "priority"),
    ({"group_scope": "0"}, IMAGE, "group_scope"),
    ({"webhook_headers": "{not json"}, IMAGE, "webhook_headers"),
    ({"webhook_headers": "[1, 2]"}, IMAGE, "webhook_headers"),
    ({"webhook_url": "ftp://x"}, IMAGE, "webhook_url"),
    ({"input_image": '{"task_id": 999}'}, {}, "999"),
    ({"input_image": "plain words"}, {}, "input_image"),
]


def test_create_rejects_bad_input(vix_server: Server) -> None:
    with vix_server.client() as http:
        for data, files, words in BAD_CREATES:
            answer = http.put("/vapi/tasks/create/invert_image", data=data, files=files or None)
            assert answer.status_code == 400, (data, answer.text)
            assert words in answer.json()["detail"], (data, answer.text)
        assert http.get("/vapi/tasks/progress").json() == {}, "nothing was queued"


def test_unknown_flow_and_values_outside_lists_and_ranges(vix_server: Server) -> None:
    flow = json.loads((FLOWS / "scale_image.json").read_text())
    vix_server.install(flow)
    with vix_server.client() as http:
        unknown = http.put("/vapi/tasks/create/no_such_flow", files=IMAGE)
        assert unknown.status_code == 404 and "no_such_flow" in unknown.json()["detail"]
        bad_list = http.put("/vapi/tasks/create/scale_image", data={"method": "cubist"}, files=IMAGE)
        assert bad_list.status_code == 400
        assert "method" in bad_list.json()["detail"] and "bicubic" in bad_list.json()["detail"]
        bad_range = http.put("/vapi/tasks/create/scale_image", data={"scale": "9.5"}, files=IMAGE)
        assert bad_range.status_code == 400 and "scale" in bad_range.json()["detail"]
        ok = http.put(
            "/vapi/tasks/create/scale_image", data={"method": "nearest-exact", "scale": "2"}, files=IMAGE
        )
        assert ok.status_code == 200, ok.text


def test_bad_requests_elsewhere(vix_server: Server) -> None:
    with vix_server.client() as http:
        assert http.get("/vapi/tasks/progress/424242").status_code == 404
        assert http.get("/vapi/tasks/results", params={"task_id": 424242, "node_id": 9}).status_code == 404
        assert http.get("/vapi/tasks/results", params={"task_id": "x", "node_id": 9}).status_code == 422
        assert http.put("/vapi/tasks/update", params={"task_id": 1}, json={"priority": 99}).status_code == 422
        broken = http.put("/vapi/flows/flow", files={"flow_file": ("f.json", b"{nope", "application/json")})
        assert broken.status_code == 400 and "JSON" in broken.json()["detail"]
        graph = json.loads((FLOWS / "invert_image.json").read_text())
        graph["2"]["class_type"] = "FancyUpscaleWithModel"
        graph["3"] = {"class_type": "AnotherMissingNode", "inputs": {}, "_meta": {"title": ""}}
        refused = http.put(
            "/vapi/flows/flow", files={"flow_file": ("f.json", json.dumps(graph), "application/json")}
        )
        assert refused.status_code == 400
        assert (
            "AnotherMissingNode" in refused.json()["detail"]
            and "FancyUpscaleWithModel" in refused.json()["detail"]
        )
        assert http.delete("/vapi/flows/flow", params={"name": "never_installed"}).status_code == 404
        bad_worker = http.put("/vapi/tasks/progress", json={"task_id": 1, "progress": 250})
        assert bad_worker.status_code == 422
