"""The server's access log is for people: an idle worker's empty long poll (``POST
/vapi/tasks/next`` answered 204) leaves no line at the default level, every other request does;
with ``-vv`` the empty polls are logged too. Read from a real server's captured output."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support import Server

NEXT = "/vapi/tasks/next"


def _logged_until(server: Server, marker: str, timeout: float = 30) -> list[str]:
    """The access log lines, once ``marker`` (a request made last) is among them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in server.log().splitlines() if "HTTP/1.1" in line]
        if any(marker in line for line in lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{marker!r} never logged:\n{server.log()[-2000:]}")


def _polls(server: Server) -> None:
    with server.client() as http:
        for wait in ("0", "0.2"):
            assert (
                http.post(NEXT, params={"wait": wait}, json={"tasks_names": ["nothing"]}).status_code == 204
            )
        # answered 204 too, but not an empty poll: kept
        assert http.delete("/vapi/tasks/queue", params={"name": "nothing"}).status_code == 204
        assert http.get("/vapi/other/whoami", params={"marker": "last"}).status_code == 200


@pytest.mark.parametrize("verbosity", ["-v", "-vv"])
def test_empty_long_polls_are_logged_only_when_debugging(
    tmp_path: Path, sqlite_url: str, verbosity: str
) -> None:
    server = Server(tmp_path, sqlite_url, local_workers=0)
    if verbosity == "-vv":
        server.args = ["-v", "run"]  # Process adds the first -v
    server.start()
    try:
        _polls(server)
        lines = _logged_until(server, "/vapi/other/whoami?marker=last")
    finally:
        server.stop()
    empty_polls = [line for line in lines if f"POST {NEXT}" in line and " 204" in line]
    assert any("DELETE /vapi/tasks/queue?name=nothing" in line and " 204" in line for line in lines)
    assert len(empty_polls) == (2 if verbosity == "-vv" else 0), lines
