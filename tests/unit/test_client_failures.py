"""Failures: retries, outages during a wait, background-removal fallback.

Failures a real server cannot easily be made to produce are scripted with httpx.MockTransport;
an unreachable server is a real closed port. Runs against the real server: tests/acceptance.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from visionatrix.client import (
    AsyncClient,
    Client,
    InvalidResponse,
    NotFound,
    ServerError,
    ServiceUnavailable,
    Timeout,
)
from visionatrix.client._calls import Call
from visionatrix.client._connection import httpx_options
from visionatrix.client._retry import Deadline, RetryPolicy

Step = Callable[[httpx.Request], httpx.Response] | Exception


class Script:
    """Answers requests with the given steps in order; the last step repeats."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step(request)


def answer(status: int, body: object = None, **headers: str) -> Step:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def client(script: Script, retries: int = 4) -> Client:
    return Client("http://vix.test", transport=httpx.MockTransport(script), retries=retries, backoff=0.001)


def _without_boundary(request: httpx.Request) -> bytes:
    boundary = request.headers["content-type"].partition("boundary=")[2].encode()
    return request.read().replace(boundary, b"")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_read_is_retried_through_503s() -> None:
    script = Script(answer(503), answer(503), answer(200, {"user_id": "admin"}))
    with client(script) as vix:
        assert vix.whoami() == {"user_id": "admin"}
    assert len(script.requests) == 3


def test_retries_are_bounded() -> None:
    script = Script(answer(502, {"detail": "bad gateway"}))
    with client(script, retries=2) as vix, pytest.raises(ServerError, match="bad gateway"):
        vix.flows()
    assert len(script.requests) == 3


def test_read_timeout_on_a_read_is_retried() -> None:
    script = Script(httpx.ReadTimeout("slow"), answer(200, {"7": {"progress": 10.0}}))
    with client(script) as vix:
        assert vix.tasks() == {"7": {"progress": 10.0}}
    assert len(script.requests) == 2


def test_client_errors_are_not_retried() -> None:
    script = Script(answer(404, {"detail": "task 9 not found"}))
    with client(script) as vix, pytest.raises(NotFound, match="task 9 not found"):
        vix.progress(9)
    assert len(script.requests) == 1


def test_create_is_not_resent_after_a_5xx() -> None:
    script = Script(answer(500, {"detail": "boom"}), answer(200, {"tasks_ids": [1]}))
    with client(script) as vix, pytest.raises(ServerError):
        vix.create_task("invert_image", files={"input_image": b"x"})
    assert len(script.requests) == 1


def test_create_is_resent_when_the_connection_was_never_made() -> None:
    script = Script(httpx.ConnectError("refused"), answer(200, {"tasks_ids": [4, 5], "outputs": []}))
    with client(script) as vix:
        assert vix.create_task("invert_image", files={"input_image": b"x"}, count=2) == [4, 5]
    assert len(script.requests) == 2
    first, second = (_without_boundary(request) for request in script.requests)
    assert first == second and b'name="count"' in first  # the same form, sent again


def test_create_is_not_resent_once_it_may_have_arrived() -> None:
    script = Script(httpx.ReadError("reset"), answer(200, {"tasks_ids": [1]}))
    with client(script) as vix, pytest.raises(ServiceUnavailable, match="may have reached the server"):
        vix.create_task("invert_image", {"prompt": "x"})
    assert len(script.requests) == 1


def test_retry_after_is_honoured() -> None:
    script = Script(answer(503, None, **{"Retry-After": "0.2"}), answer(200, []))
    started = time.monotonic()
    with client(script) as vix:
        assert vix.flows() == []
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    ("body", "call"),
    [
        (b"<html>oops</html>", lambda vix: vix.progress(1)),
        (b"[1, 2]", lambda vix: vix.progress(1)),
        (b'{"outputs": []}', lambda vix: vix.create_task("f", {"a": 1})),
        (b'{"name": "f"}', lambda vix: vix.flows()),
    ],
)
def test_malformed_answers_raise_invalid_response(body: bytes, call: Callable[[Client], object]) -> None:
    script = Script(lambda request: httpx.Response(200, content=body))
    with client(script) as vix, pytest.raises(InvalidResponse):
        call(vix)


def test_backoff_doubles_with_jitter() -> None:
    policy = RetryPolicy(retries=4, backoff=1.0)
    for attempt in range(4):
        delays = [policy._delay(attempt, Deadline(None)) for _ in range(20)]
        assert all(2**attempt / 2 <= d <= 2**attempt for d in delays)  # type: ignore[operator]
    assert policy._delay(4, Deadline(None)) is None


def test_a_deadline_cuts_the_retries_short() -> None:
    policy = RetryPolicy(retries=4, backoff=1.0)
    assert policy.after_error(httpx.ConnectError("x"), Call("GET", "/"), 0, Deadline(0.1)) is None


def test_closed_port_is_unavailable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with Client(url, retries=2, backoff=0.01) as vix:
        started = time.monotonic()
        assert vix.is_available() is False
        assert time.monotonic() - started < 2
        with pytest.raises(ServiceUnavailable, match="cannot reach") as caught:
            vix.whoami()
    assert caught.value.status_code is None


def test_async_client_retries_the_same_way() -> None:
    script = Script(answer(503), httpx.ConnectError("refused"), answer(200, {"user_id": "admin"}))

    async def scenario() -> dict[str, object]:
        async with AsyncClient(
            "http://vix.test", transport=httpx.MockTransport(script), backoff=0.001
        ) as vix:
            return await vix.whoami()

    assert asyncio.run(scenario()) == {"user_id": "admin"}
    assert len(script.requests) == 3


def test_async_client_on_a_closed_port() -> None:
    async def scenario() -> tuple[bool, str]:
        async with AsyncClient(f"http://127.0.0.1:{closed_port()}", retries=1, backoff=0.01) as vix:
            available = await vix.is_available()
            try:
                await vix.flows()
            except ServiceUnavailable as exc:
                return available, str(exc)
            return available, ""

    available, error = asyncio.run(scenario())
    assert available is False
    assert "cannot reach" in error


def test_credentials_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONATRIX_API_URL", "http://vix.example:9000/")
    monkeypatch.setenv("VISIONATRIX_USERNAME", "admin")
    monkeypatch.setenv("VISIONATRIX_PASSWORD", "secret")
    options = httpx_options(None, None, None, 30.0)
    with httpx.Client(**options) as http:
        request = next(options["auth"].auth_flow(http.build_request("GET", "/vapi/other/whoami")))
    assert str(request.url) == "http://vix.example:9000/vapi/other/whoami"
    assert request.headers["authorization"] == httpx.BasicAuth("admin", "secret")._auth_header
    assert httpx_options("http://other", None, None, 30.0)["base_url"] == "http://other"


def test_no_username_means_no_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISIONATRIX_USERNAME", raising=False)
    monkeypatch.delenv("VISIONATRIX_API_URL", raising=False)
    options = httpx_options(None, None, "ignored", 30.0)
    assert options["auth"] is None
    assert options["base_url"] == "http://localhost:8288"


PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32


def _task(progress: float, error: str = "") -> object:
    return answer(200, {"task_id": 3, "progress": progress, "error": error, "outputs": []})


def _outage_then_done() -> Script:
    # A server without the event stream (wait() then polls) and a restart as the client sees it:
    # refused connections, a proxy's 503s, then the server again.
    return Script(
        answer(404, {"detail": "Not Found"}),
        _task(50.0),
        httpx.ConnectError("refused"),
        answer(503),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        answer(502),
        _task(100.0),
    )


def test_wait_survives_an_outage_longer_than_the_retries() -> None:
    script = _outage_then_done()
    seen: list[float] = []
    transport = httpx.MockTransport(script)
    with Client("http://vix.test", transport=transport, retries=1, backoff=0.001) as vix:
        task = vix.wait(3, poll_interval=0.001, timeout=10, on_progress=lambda t: seen.append(t["progress"]))
    assert task["progress"] == 100.0
    assert seen == [50.0, 100.0]
    assert [r.url.path for r in script.requests[:2]] == ["/vapi/tasks/events", "/vapi/tasks/progress/3"]
    assert len(script.requests) == 10


def test_async_wait_survives_the_same_outage_and_awaits_async_callbacks() -> None:
    script = _outage_then_done()
    seen: list[float] = []

    async def record(task: dict[str, object]) -> None:
        seen.append(float(task["progress"]))  # type: ignore[arg-type]

    async def scenario() -> dict[str, object]:
        transport = httpx.MockTransport(script)
        async with AsyncClient("http://vix.test", transport=transport, retries=1, backoff=0.001) as vix:
            return await vix.wait(3, poll_interval=0.001, timeout=10, on_progress=record)

    assert asyncio.run(scenario())["progress"] == 100.0
    assert seen == [50.0, 100.0]


def test_wait_against_a_dead_server_ends_at_the_timeout() -> None:
    transport = httpx.MockTransport(Script(httpx.ConnectError("refused")))
    started = time.monotonic()
    with (
        Client("http://vix.test", transport=transport, backoff=0.05) as vix,
        pytest.raises(Timeout) as caught,
    ):
        vix.wait(3, poll_interval=0.05, timeout=0.3)
    assert caught.value.task_id == 3
    assert 0.3 <= time.monotonic() - started < 1.5


def test_remove_background_falls_back_on_a_closed_port(tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(PNG)
    with Client(f"http://127.0.0.1:{closed_port()}", backoff=0.01) as vix:
        started = time.monotonic()
        outcome = vix.remove_background(image)
        elapsed = time.monotonic() - started
    assert outcome.fell_back and outcome.image == PNG and outcome.task_id is None
    assert "not reachable" in (outcome.fallback_reason or "")
    assert elapsed < 2  # one probe, no retry storm


def test_remove_background_without_fallback_raises() -> None:
    with Client(f"http://127.0.0.1:{closed_port()}", retries=1, backoff=0.01) as vix:
        with pytest.raises(ServiceUnavailable):
            vix.remove_background(PNG, fallback=False)


def test_async_remove_background_falls_back_on_a_closed_port() -> None:
    async def scenario() -> tuple[bool, bytes]:
        async with AsyncClient(f"http://127.0.0.1:{closed_port()}") as vix:
            outcome = await vix.remove_background(PNG)
            return outcome.fell_back, outcome.image

    assert asyncio.run(scenario()) == (True, PNG)


def test_remove_background_reports_a_missing_local_file(tmp_path: Path) -> None:
    with Client(f"http://127.0.0.1:{closed_port()}") as vix, pytest.raises(FileNotFoundError):
        vix.remove_background(tmp_path / "nope.png")
