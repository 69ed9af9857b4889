"""The SDK against the real server (uvicorn + a local worker) running the weight-free invert_image flow."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support import Server, free_port, png_bytes
from visionatrix.client import (
    AsyncClient,
    Client,
    ClientError,
    InvalidInput,
    NotFound,
    RunResult,
    ServiceUnavailable,
)

GREEN = (10, 200, 30)
INVERTED = (245, 55, 225)


def _color(content: bytes) -> tuple[int, ...]:
    return Image.open(io.BytesIO(content)).convert("RGB").getpixel((5, 5))  # type: ignore[return-value]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(GREEN))
    return path


def test_run_creates_waits_and_downloads(vix_server: Server, photo: Path, tmp_path: Path) -> None:
    seen: list[float] = []
    with Client(vix_server.url) as vix:
        assert vix.is_available()
        assert vix.whoami()["is_admin"] is True
        assert "invert_image" in {flow["name"] for flow in vix.flows()}
        done = vix.run(
            "invert_image",
            files={"input_image": photo},
            timeout=60,
            poll_interval=0.1,
            on_progress=lambda task: seen.append(task["progress"]),
        )
    assert done.task["progress"] == 100.0 and done.task["error"] == ""
    [file] = done.files
    assert (file.node_id, file.batch_index, file.content_type) == (9, 0, "image/png")
    assert _color(file.content) == INVERTED
    assert seen and seen[-1] == 100.0 and seen == sorted(seen)
    saved = file.save(tmp_path / "out")
    assert saved.parent == tmp_path / "out" and saved.read_bytes() == file.content


def test_async_client_runs_the_same_flow(vix_server: Server) -> None:
    async def scenario() -> RunResult:
        async with AsyncClient(vix_server.url) as vix:
            assert await vix.is_available()
            files = {"input_image": png_bytes(GREEN)}
            return await vix.run("invert_image", files=files, timeout=60, poll_interval=0.1)

    done = asyncio.run(scenario())
    assert [_color(f.content) for f in done.files] == [INVERTED]


def test_several_tasks_listed_downloaded_and_deleted(vix_server: Server) -> None:
    with Client(vix_server.url) as vix:
        ids = vix.create_task("invert_image", files={"input_image": png_bytes(GREEN)}, count=2, seed=7)
        assert len(ids) == 2
        listed = vix.tasks(name="invert_image")
        assert {str(i) for i in ids} <= set(listed)
        finished = [vix.wait(task_id, timeout=60, poll_interval=0.1) for task_id in ids]
        assert [task["input_params"]["seed"] for task in finished] == [7, 8]
        assert _color(vix.result(ids[0], 9)) == INVERTED
        assert vix.results(ids[1], [9])[0].content == vix.result(ids[1], 9, 0)
        assert vix.task_input(ids[0], 0) == png_bytes(GREEN)
        vix.cancel(ids[0])
        vix.delete(ids[1])
        for task_id in ids:
            with pytest.raises(NotFound):
                vix.progress(task_id)


def test_server_refusals_are_typed(vix_server: Server) -> None:
    with Client(vix_server.url) as vix:
        with pytest.raises(NotFound):
            vix.create_task("no_such_flow", {"prompt": "x"})
        with pytest.raises(InvalidInput, match="input_image"):
            vix.create_task("invert_image")
        with pytest.raises(NotFound):
            vix.progress(999_999)


def test_worker_api_calls(vix_server: Server) -> None:
    with Client(vix_server.url) as vix:
        assert vix.next_task({"worker_version": "test"}, ["no_such_flow"], wait=0.0) is None
        started = time.monotonic()
        assert vix.next_task({"worker_version": "test"}, ["no_such_flow"], wait=0.5) is None
        assert time.monotonic() - started >= 0.4  # the server held the long poll
        with pytest.raises(NotFound):
            vix.report_progress(999_999, 50.0)


def test_remove_background_through_the_pipeline(vix_server: Server, photo: Path) -> None:
    with Client(vix_server.url) as vix:
        outcome = vix.remove_background(photo, flow="invert_image", timeout=60)
    assert not outcome.fell_back and outcome.fallback_reason is None
    assert isinstance(outcome.task_id, int)
    assert _color(outcome.image) == INVERTED


def test_remove_background_falls_back_on_a_closed_port(photo: Path) -> None:
    with Client(f"http://127.0.0.1:{free_port()}") as vix:
        outcome = vix.remove_background(photo, flow="invert_image")
    assert outcome.fell_back and outcome.image == photo.read_bytes()
    assert "not reachable" in (outcome.fallback_reason or "")


def test_remove_background_falls_back_on_a_corrupt_image(vix_server: Server) -> None:
    corrupt = b"\x89PNG\r\n\x1a\n this is not really an image"
    with Client(vix_server.url) as vix:
        outcome = vix.remove_background(corrupt, flow="invert_image", timeout=60)
        assert outcome.fell_back and outcome.image == corrupt
        assert outcome.fallback_reason
        with pytest.raises(ClientError):  # refused at create (400) or a failed task
            vix.remove_background(corrupt, flow="invert_image", timeout=60, fallback=False)


def test_remove_background_falls_back_on_timeout_and_cancels(idle_server: Server, photo: Path) -> None:
    # No worker: the task stays queued, so the timeout is certain.
    with Client(idle_server.url) as vix:
        outcome = vix.remove_background(photo, flow="invert_image", timeout=0.3)
        assert outcome.fell_back and outcome.image == photo.read_bytes()
        assert "did not finish" in (outcome.fallback_reason or "")
        assert outcome.task_id is not None
        with pytest.raises(NotFound):  # nobody will read it, so it was cancelled
            vix.progress(outcome.task_id)


def _restart_soon(server: Server, delay: float = 1.0) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), server.start()))
    thread.start()
    return thread


def test_wait_survives_a_server_restart(vix_server: Server) -> None:
    with Client(vix_server.url, backoff=0.1) as vix:
        [task_id] = vix.create_task("invert_image", files={"input_image": png_bytes(GREEN)})
        vix.wait(task_id, timeout=60, poll_interval=0.1)
        vix_server.stop()
        restart = _restart_soon(vix_server)
        try:
            task: dict[str, Any] = vix.wait(task_id, timeout=90, poll_interval=0.2)
        finally:
            restart.join()
        assert task["progress"] == 100.0
        assert _color(vix.result(task_id, 9)) == INVERTED


def test_run_waits_out_a_server_that_is_starting(vix_server: Server) -> None:
    vix_server.stop()
    with Client(vix_server.url, retries=1, backoff=0.05) as vix:
        with pytest.raises(ServiceUnavailable):
            vix.flows()
    restart = _restart_soon(vix_server, delay=0.5)
    try:
        # Creating is re-sent only while the connection is refused, which is safe: nothing arrived.
        with Client(vix_server.url, retries=12, backoff=0.2) as vix:
            files = {"input_image": png_bytes(GREEN)}
            done = vix.run("invert_image", files=files, timeout=60, poll_interval=0.1)
    finally:
        restart.join()
    assert _color(done.files[0].content) == INVERTED
