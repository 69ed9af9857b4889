"""What a web page in the user's browser can do to a server (issue 7, points 8 and 9): cross-site
writes are refused as ComfyUI's origin check refuses them, every answer carries nosniff and a
frame-ancestors policy, a 405 names every method of its path, and DEFAULT mode warns when it
listens beyond loopback. These guards sit before the database; one SQLite server serves them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import FLOWS, Server, png_bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("guards")
    vix = Server(folder, f"sqlite:///{folder / 'vix.db'}", local_workers=0)
    vix.start()
    try:
        vix.install(FLOWS / "invert_image.json")
        yield vix
    finally:
        vix.stop()


def test_cross_site_writes_are_refused(server: Server) -> None:
    with server.client() as http:
        own = f"http://127.0.0.1:{server.port}"
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "http://127.0.0.1:1"},  # another port is another origin
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            refused = http.post("/vapi/flows/flow", params={"name": "sdxl_lighting"}, headers=headers)
            assert refused.status_code == 403 and "cross-" in refused.json()["detail"], (
                headers,
                refused.text,
            )
            simple = http.put(
                "/vapi/tasks/create/invert_image", data={"count": "1"}, files=None, headers=headers
            )
            assert simple.status_code == 403, headers
        assert http.get("/vapi/tasks/progress").json() == {}, "nothing was created"
        assert http.get("/vapi/flows/installed", headers={"Origin": "http://evil.example"}).status_code == 200
        for headers in (
            {"Origin": own},
            {"Origin": "http://evil.example", "X-Forwarded-Host": "evil.example"},
            {},
        ):
            allowed = http.put(
                "/vapi/tasks/create/invert_image",
                files={"input_image": ("a.png", png_bytes())},
                headers=headers,
            )
            assert allowed.status_code == 200, (headers, allowed.text)


def test_every_answer_carries_the_safety_headers(server: Server) -> None:
    with server.client() as http:
        answers = [
            http.get("/vapi/flows/installed"),
            http.get("/vapi/tasks/progress/12345"),
            http.post("/vapi/flows/flow", params={"name": "x"}, headers={"Origin": "http://evil.example"}),
            http.get("/docs"),
            http.request("OPTIONS", "/vapi/flows/flow"),
        ]
    assert [a.status_code for a in answers] == [200, 404, 403, 200, 405]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in answer.headers["content-security-policy"]


def test_a_405_names_every_method_of_its_path(server: Server) -> None:
    with server.client() as http:
        for method, path, allow in (
            ("OPTIONS", "/vapi/flows/flow", "DELETE, POST, PUT"),
            ("PATCH", "/vapi/tasks/progress", "GET, PUT"),
            ("GET", "/vapi/tasks/next", "POST"),
            ("POST", "/vapi/tasks/results", "GET, PUT"),
        ):
            answer = http.request(method, path)
            assert answer.status_code == 405 and answer.headers["allow"] == allow, (
                method,
                path,
                answer.headers,
            )


def test_default_mode_off_loopback_warns_loudly(tmp_path: Path, sqlite_url: str) -> None:
    exposed = Server(tmp_path, sqlite_url, local_workers=0)
    exposed.env["VIX_HOST"] = "0.0.0.0"
    exposed.start()
    try:
        assert httpx.get(f"{exposed.url}/vapi/other/whoami").json()["is_admin"] is True
    finally:
        exposed.stop()
    assert "anyone who can reach this port is an administrator" in exposed.log()
