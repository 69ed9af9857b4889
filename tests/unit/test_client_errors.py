"""The client's error tree: built from real status codes and FastAPI-style bodies."""

from __future__ import annotations

import httpx
import pytest

from visionatrix.client import (
    ClientError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServerError,
    TaskFailed,
    Timeout,
    Unauthorized,
)
from visionatrix.client.errors import error_from_response


def _answer(status: int, **kwargs: object) -> httpx.Response:
    request = httpx.Request("PUT", "http://vix.test/vapi/tasks/create/invert_image")
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidInput),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (422, InvalidInput),
        (418, ClientError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_code_picks_the_exception_class(status: int, kind: type[ClientError]) -> None:
    error = error_from_response(_answer(status, json={"detail": "nope"}))
    assert type(error) is kind
    assert error.status_code == status
    assert error.detail == "nope"


def test_message_names_detail_request_and_status() -> None:
    error = error_from_response(_answer(404, json={"detail": "Flow 'invert_image' is not installed"}))
    assert str(error) == "Flow 'invert_image' is not installed (PUT /vapi/tasks/create/invert_image 404)"


def test_validation_errors_list_each_field() -> None:
    detail = [
        {"loc": ["body", "seed"], "msg": "Input should be a valid integer", "type": "int_parsing"},
        {"loc": ["query", "task_id"], "msg": "Field required", "type": "missing"},
    ]
    error = error_from_response(_answer(422, json={"detail": detail}))
    assert isinstance(error, InvalidInput)
    assert error.detail == "body.seed: Input should be a valid integer; query.task_id: Field required"


def test_non_json_body_becomes_the_detail() -> None:
    error = error_from_response(_answer(502, text="<html>Bad Gateway</html>"))
    assert isinstance(error, ServerError)
    assert error.detail == "<html>Bad Gateway</html>"


def test_empty_body_falls_back_to_reason_phrase() -> None:
    assert error_from_response(_answer(503)).detail == "Service Unavailable"


def test_task_errors_carry_the_task_id() -> None:
    failed = TaskFailed(7, "node 3 (ImageInvert): bad image")
    assert (failed.task_id, failed.error) == (7, "node 3 (ImageInvert): bad image")
    assert "task 7 failed" in str(failed)
    late = Timeout(8, 2.5)
    assert (late.task_id, late.timeout, late.status_code) == (8, 2.5, None)
    assert isinstance(failed, ClientError) and isinstance(late, ClientError)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(199.99254978900012, "200"), (12.4, "12"), (2.5, "2.5"), (0.49993, "0.5"), (None, "unlimited")],
)
def test_timeout_message_rounds_the_seconds(seconds: float | None, shown: str) -> None:
    assert str(Timeout(8, seconds)) == f"task 8 did not finish within {shown} s"
