"""Visionatrix's remote-VAE switch: flows that can decode on a remote VAE do so for the flows listed.

A flow that supports it (metadata ``remote_vae: true``) carries a ``VixCheckboxLogic`` titled
``remote_vae``, off: its off branch is the local ``VAEDecode``, its on branch ``RemoteVAEDecode``.
As Visionatrix does, a claimed task's switches are turned on when the task's flow is named in the
``remote_vae_flows`` setting (a JSON list; the task owner's own value, else the global one). The
worker then decodes on the endpoint its ``VIX_REMOTE_VAE_FLUX`` names, or locally without one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db import settings as db_settings

log = logging.getLogger(__name__)

SETTING = "remote_vae_flows"
SWITCH_TITLE = "remote_vae"


def switch_nodes(graph: Mapping[str, Any]) -> list[str]:
    return [
        str(node_id)
        for node_id, node in graph.items()
        if isinstance(node, Mapping) and str((node.get("_meta") or {}).get("title", "")) == SWITCH_TITLE
    ]


def _flows(value: str) -> list[str]:
    try:
        names = json.loads(value) if value else []
    except json.JSONDecodeError:
        log.warning("setting %s is not a JSON list: %r", SETTING, value[:200])
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


async def attach_to_claim(session: AsyncSession, task: dict[str, Any]) -> dict[str, Any]:
    """``task`` with its remote-VAE switches on when its flow is listed in ``remote_vae_flows``."""
    graph = task.get("flow_comfy") or {}
    nodes = switch_nodes(graph)
    if not nodes:
        return task
    owner = str(task.get("user_id") or "")
    rows = {r.user_id: r.value for r in await db_settings.many(session, {owner, ""}, [SETTING])}
    value = rows.get(owner) if owner and rows.get(owner) else rows.get("", "")
    if str(task.get("name", "")) in _flows(value or ""):
        for node_id in nodes:
            graph[node_id].setdefault("inputs", {})["state"] = True
    return task
