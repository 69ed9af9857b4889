"""The wire shape of the SDK's requests, built by the pure ``_calls`` module and encoded by httpx."""

from __future__ import annotations

import email.message
import email.parser
import io
import json
from pathlib import Path

import httpx
import pytest

from visionatrix.client import _calls
from visionatrix.client._multipart import reserved_fields, task_parts
from visionatrix.client._outcome import is_finished, resolve_outputs, result_slots
from visionatrix.client.errors import TaskFailed

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16


def _encode(call: _calls.Call) -> httpx.Request:
    with httpx.Client(base_url="http://vix.test") as http:
        return http.build_request(call.method, call.path, **call.httpx_kwargs(http.timeout))


def _form(request: httpx.Request) -> list[tuple[str, str | None, bytes, str | None]]:
    """(field, filename, content, content type) of every part of a multipart request."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + request.read())
    return [_part(part) for part in message.get_payload()]


def _part(part: email.message.Message) -> tuple[str, str | None, bytes, str | None]:
    name = part.get_param("name", header="content-disposition")
    return str(name), part.get_filename(), part.get_payload(decode=True), part.get("content-type")


def test_create_task_sends_every_value_as_multipart(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(JPEG)
    reserved = reserved_fields(
        seed=42, count=2, priority=None, webhook_headers={"X-Key": "k"}, child_task=True
    )
    parts = task_parts(
        {"prompt": "a cat", "steps": 20, "strength": 0.5, "hires": False}, {"input_image": photo}, reserved
    )
    request = _encode(_calls.create_task("my flow/x", parts))

    assert request.method == "PUT"
    assert request.url.raw_path == b"/vapi/tasks/create/my%20flow%2Fx"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert _form(request) == [
        ("seed", None, b"42", None),
        ("count", None, b"2", None),
        ("webhook_headers", None, b'{"X-Key": "k"}', None),
        ("child_task", None, b"1", None),
        ("prompt", None, b"a cat", None),
        ("steps", None, b"20", None),
        ("strength", None, b"0.5", None),
        ("hires", None, b"0", None),
        ("input_image", "photo.jpg", JPEG, "image/jpeg"),
    ]


def test_create_task_without_files_is_still_multipart() -> None:
    request = _encode(_calls.create_task("sdxl", task_parts({"prompt": "x"}, None, {})))
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert _form(request) == [("prompt", None, b"x", None)]


def test_create_task_is_never_resent_blindly() -> None:
    assert not _calls.create_task("f", []).idempotent
    assert _calls.progress(1).idempotent


@pytest.mark.parametrize(
    ("value", "filename", "content_type"),
    [
        (PNG, "input_image.png", "image/png"),
        (b"plain bytes", "input_image.bin", "application/octet-stream"),
        (("mask.webp", b"RIFF...."), "mask.webp", "image/webp"),
        (io.BytesIO(JPEG), "input_image.jpg", "image/jpeg"),
    ],
)
def test_file_inputs_get_a_name_and_type(value: object, filename: str, content_type: str) -> None:
    [(_field, (name, _content, kind))] = task_parts(None, {"input_image": value}, {})  # type: ignore[dict-item]
    assert (name, kind) == (filename, content_type)


def test_text_mode_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("x")
    with path.open() as handle, pytest.raises(TypeError, match="'input_image'.*binary mode"):
        task_parts(None, {"input_image": handle}, {})  # type: ignore[dict-item]


def test_unsupported_input_value_names_the_input() -> None:
    with pytest.raises(TypeError, match="input 'prompt'"):
        task_parts({"prompt": ["a", "b"]}, None, {})  # type: ignore[dict-item]


def test_next_task_long_poll_outlasts_the_server_wait() -> None:
    quick = _calls.next_task({"worker_version": "1"}, ["invert_image"], "", 0.0)
    assert quick.params is None and quick.timeout is None
    slow = _calls.next_task({}, ["invert_image"], "invert_image", 25.0)
    request = _encode(slow)
    assert request.url.params["wait"] == "25"
    assert request.extensions["timeout"]["read"] == 35.0
    assert json.loads(request.read()) == {
        "worker_details": {},
        "tasks_names": ["invert_image"],
        "last_task_name": "invert_image",
    }
    assert not slow.idempotent


def test_report_progress_body() -> None:
    request = _encode(_calls.report_progress(5, 42.5, 1.5, "", None))
    assert (request.method, request.url.path) == ("PUT", "/vapi/tasks/progress")
    assert json.loads(request.read()) == {
        "worker_details": {},
        "task_id": 5,
        "progress": 42.5,
        "execution_time": 1.5,
        "error": "",
    }


def test_upload_results_repeats_the_files_part() -> None:
    request = _encode(
        _calls.upload_results(5, [("5_9_0.png", PNG, "image/png"), ("5_9_1.png", PNG, "image/png")])
    )
    assert request.url.params["task_id"] == "5"
    assert _form(request) == [
        ("files", "5_9_0.png", PNG, "image/png"),
        ("files", "5_9_1.png", PNG, "image/png"),
    ]


def test_worker_names_itself_when_uploading_and_giving_back() -> None:
    details = {"worker_id": "w:host:1", "worker_version": "1"}
    upload = _encode(_calls.upload_results(5, [("5_9_0.png", PNG, "image/png")], details))
    assert _form(upload)[-1] == ("worker_details", None, json.dumps(details).encode(), None)
    release = _encode(_calls.release_lock(5, details))
    assert json.loads(release.headers["x-worker-details"]) == details
    assert "x-worker-details" not in _encode(_calls.release_lock(5)).headers


@pytest.mark.parametrize(
    ("call", "method", "target"),
    [
        (_calls.tasks(None, 1), "GET", "/vapi/tasks/progress?group_scope=1"),
        (_calls.tasks("sdxl", 2), "GET", "/vapi/tasks/progress?group_scope=2&name=sdxl"),
        (_calls.result(3, 9, 1), "GET", "/vapi/tasks/results?task_id=3&node_id=9&batch_index=1"),
        (_calls.delete_task(3), "DELETE", "/vapi/tasks/task?task_id=3"),
        (_calls.restart(3, True), "POST", "/vapi/tasks/restart?task_id=3&force=true"),
        (_calls.release_lock(3), "DELETE", "/vapi/tasks/lock?task_id=3"),
        (_calls.task_input(3, 0), "GET", "/vapi/tasks/inputs?task_id=3&input_index=0"),
        (_calls.set_priority(3, 7), "PUT", "/vapi/tasks/update?task_id=3"),
    ],
)
def test_routes_follow_the_wire_contract(call: _calls.Call, method: str, target: str) -> None:
    request = _encode(call)
    assert (request.method, request.url.raw_path.decode()) == (method, target)


def test_result_file_is_named_from_the_answer() -> None:
    named = httpx.Response(
        200, content=PNG, headers={"content-disposition": 'attachment; filename="5_9_0.png"'}
    )
    assert _calls.result_file(named, 5, 9, 0).filename == "5_9_0.png"
    anonymous = httpx.Response(200, content=b"GIF89a", headers={"content-type": "image/gif"})
    result = _calls.result_file(anonymous, 5, 9, 1)
    assert (result.filename, result.content_type, result.node_id, result.batch_index) == (
        "5_9_1.gif",
        "image/gif",
        9,
        1,
    )


TASK = {"outputs": [{"comfy_node_id": 9, "batch_size": 2}, {"comfy_node_id": 12, "batch_size": -1}]}


@pytest.mark.parametrize(
    ("wanted", "task", "slots"),
    [
        (None, TASK, [(9, 0), (9, 1), (12, 0)]),  # every file; an unknown size (-1) still has one
        ([12, 99], TASK, [(12, 0), (99, 0)]),  # node ids looked up; an unknown one left to the server's 404
        ([{"comfy_node_id": 9, "batch_size": 1}], None, [(9, 0)]),  # complete outputs need no task
    ],
)
def test_result_slots(
    wanted: list[object] | None, task: dict[str, object] | None, slots: list[tuple[int, int]]
) -> None:
    assert result_slots(1, resolve_outputs(1, wanted, task)) == slots  # type: ignore[arg-type]


def test_a_task_is_finished_at_100_and_failed_on_any_error() -> None:
    assert not is_finished(1, {"progress": 99.9, "error": ""})
    assert is_finished(1, {"progress": 100.0, "error": ""})
    with pytest.raises(TaskFailed, match="task 1 failed: node 2 \\(ImageInvert\\): boom"):
        is_finished(1, {"progress": 40.0, "error": "node 2 (ImageInvert): boom"})
