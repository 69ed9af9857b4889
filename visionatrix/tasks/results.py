"""A worker's result files: matched to the task's output nodes by name, then stored."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from visionatrix.db.tables import Task
from visionatrix.errors import InvalidInput, StorageFull
from visionatrix.storage import Storage
from visionatrix.tasks.requests import UploadedFile

# <task_id>_<node_id>_<n>.<ext>, as Visionatrix workers name them
_RESULT_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)\.([A-Za-z0-9]{1,8})$")


async def store_results(storage: Storage, task: Task, files: list[UploadedFile]) -> list[dict[str, Any]]:
    """Store every result file; the task's outputs with their sizes filled in."""
    by_node = _group(task, files)
    outputs = []
    try:
        for output in task.outputs:
            node = int(output["comfy_node_id"])
            size = 0
            for index, (_n, ext, upload) in enumerate(by_node[node]):
                size += await asyncio.to_thread(storage.save_output, task.id, node, index, upload.file, ext)
            outputs.append({**output, "file_size": size, "batch_size": len(by_node[node])})
    except StorageFull:
        # half a result set is no result: free the room it took, the worker may try again
        await asyncio.to_thread(storage.delete_outputs, task.id)
        raise
    return outputs


def _group(task: Task, files: list[UploadedFile]) -> dict[int, list[tuple[int, str, UploadedFile]]]:
    wanted = {int(o["comfy_node_id"]) for o in task.outputs}
    by_node: dict[int, list[tuple[int, str, UploadedFile]]] = {node: [] for node in wanted}
    for upload in files:
        match = _RESULT_NAME.match(upload.filename or "")
        if not match or int(match.group(1)) != task.id:
            raise InvalidInput(f"result file name {upload.filename!r} is not '<task_id>_<node_id>_<n>.<ext>'")
        node = int(match.group(2))
        if node not in wanted:
            raise InvalidInput(f"result file {upload.filename!r}: task {task.id} has no output node {node}")
        by_node[node].append((int(match.group(3)), match.group(4).lower(), upload))
    empty = sorted(node for node, items in by_node.items() if not items)
    if empty:
        raise InvalidInput(f"missing result files for output node(s) {', '.join(map(str, empty))}")
    return {node: sorted(items, key=lambda item: item[0]) for node, items in by_node.items()}
