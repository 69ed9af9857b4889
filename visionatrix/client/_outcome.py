"""Decisions both clients share: is the task done, which files to fetch, what to fall back to."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from visionatrix.client._types import BackgroundRemoval, RunResult
from visionatrix.client.errors import ClientError, InvalidResponse, TaskFailed

Outputs = list[dict[str, Any]] | list[int]


def is_finished(task_id: int, task: Mapping[str, Any]) -> bool:
    """True once progress reaches 100; raises :class:`TaskFailed` as soon as the task has an error."""
    if task.get("error"):
        raise TaskFailed(task_id, str(task["error"]))
    try:
        return float(task.get("progress", 0.0)) >= 100.0
    except (TypeError, ValueError) as exc:
        raise InvalidResponse(f"task {task_id}: progress is not a number: {task.get('progress')!r}") from exc


def needs_task(outputs: Outputs | None) -> bool:
    """Whether the batch sizes must be read from the task first."""
    return outputs is None or not all(isinstance(output, Mapping) for output in outputs)


def task_outputs(task_id: int, task: Mapping[str, Any]) -> list[dict[str, Any]]:
    outputs = task.get("outputs")
    if not isinstance(outputs, list):
        raise InvalidResponse(f"task {task_id} has no 'outputs' list")
    return outputs


def resolve_outputs(
    task_id: int, wanted: Outputs | None, task: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The outputs to download: all of the task's, or those asked for (node ids looked up in the task).

    An unknown node id is kept with one file: the server will answer 404 for it.
    """
    if task is None:
        return [dict(output) for output in wanted or [] if isinstance(output, Mapping)]
    known = task_outputs(task_id, task)
    if wanted is None:
        return known
    by_node = {output.get("comfy_node_id"): output for output in known}
    return [dict(w) if isinstance(w, Mapping) else by_node.get(w, {"comfy_node_id": w}) for w in wanted]


def result_slots(task_id: int, outputs: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """``(node_id, batch_index)`` of every file; an unknown batch size (-1) still has one file."""
    slots = []
    for output in outputs:
        try:
            node_id = int(output["comfy_node_id"])
            batch_size = max(1, int(output.get("batch_size") or 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidResponse(f"task {task_id}: malformed output {output!r}") from exc
        slots += [(node_id, index) for index in range(batch_size)]
    return slots


def single_task(create_kw: Mapping[str, Any]) -> None:
    count = create_kw.get("count")
    if count is not None and count != 1:
        raise ValueError("run() follows one task; use create_task(count=...) and wait() for several")


def read_image(image: bytes | str | Path) -> bytes:
    """The caller's image bytes; a path that cannot be read is the caller's error and raises OSError."""
    return bytes(image) if isinstance(image, bytes | bytearray) else Path(image).read_bytes()


def cut_out(done: RunResult) -> BackgroundRemoval:
    """The first image the task produced."""
    images = [f for f in done.files if f.content_type.startswith("image/")] or done.files
    if not images:
        raise InvalidResponse(f"task {done.task_id} finished without an output file")
    return BackgroundRemoval(images[0].content, fell_back=False, task_id=done.task_id)


def fallback(original: bytes, reason: str, task_id: int | None = None) -> BackgroundRemoval:
    return BackgroundRemoval(original, fell_back=True, fallback_reason=reason, task_id=task_id)


def fallback_for(original: bytes, error: ClientError) -> BackgroundRemoval:
    """The original image, with the error as the reason and the task id when the task was created."""
    return fallback(original, str(error), getattr(error, "task_id", None))
