"""Shape task rows into the Visionatrix JSON clients read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from visionatrix.db.tables import Task


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def details(task: Task, child_tasks: list[int], warning: str = "") -> dict[str, Any]:
    """``warning``: an extension, why a queued task cannot start (``tasks.workers.waiting_warnings``)."""
    return {
        "task_id": task.id,
        "name": task.name,
        "status": task.status,
        "progress": round(task.progress, 1),
        "error": task.error,
        "outputs": task.outputs,
        "input_params": task.input_params,
        "input_files": task.input_files,
        "execution_time": task.execution_time,
        "locked_at": _iso(task.locked_at),
        "worker_id": task.worker_id,
        "priority": task.priority,
        "group_scope": task.group_scope,
        "parent_task_id": task.parent_task_id,
        "parent_task_node_id": task.parent_task_node_id,
        "child_tasks": child_tasks,
        "translated_input_params": task.translated_input_params,
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
        "finished_at": _iso(task.finished_at),
        "user_id": task.user_id,
        "attempts": task.attempts,
        "webhook_url": task.webhook_url,
        "webhook_headers": task.webhook_headers,
        "warning": warning,
    }


_SUMMARY = (
    "task_id", "name", "status", "progress", "error", "outputs", "input_params", "execution_time",
    "parent_task_id", "child_tasks", "priority", "group_scope", "warning",
)  # fmt: skip


def summary(task: Task, child_tasks: list[int], warning: str = "") -> dict[str, Any]:
    full = details(task, child_tasks, warning)
    return {key: full[key] for key in _SUMMARY}


def for_worker(task: Task, lease_seconds: float) -> dict[str, Any]:
    data = details(task, [])
    data["flow_comfy"] = task.flow_graph
    # extension: how often the worker must report for its claim to stay alive
    data["lease_seconds"] = lease_seconds
    return data
