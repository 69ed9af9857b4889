"""LLM provider settings as the server resolves them, and what it hands to workers.

A user's own settings win over the global ones. Sensitive global values (the admin's API keys)
serve the server's own calls for every user (translation, Surprise Me: the key never leaves the
server) and travel to a worker only when the worker is an admin's: a user's own worker could
read them off the wire, so it gets the user's settings and the non-sensitive global ones only.
A user's own endpoints (``ENDPOINT_KEYS``: provider URLs, the proxy) count only on that user's own
worker: the server and admins' workers call the endpoints the admin set.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db import settings as db_settings
from visionatrix.errors import NotFound, ProviderError
from visionatrix.llm import Ollama
from visionatrix.llm.settings import ENDPOINT_KEYS, NODE_CLASSES, LLMSettings
from visionatrix.schemas import OllamaModelItem, UserInfo

# listing models is quick when the provider is up; a settings page should not wait minutes
LIST_TIMEOUT = 15.0


async def for_user(
    session: AsyncSession, user_id: str, *, with_sensitive: bool, own_endpoints: bool
) -> LLMSettings:
    rows = await db_settings.many(session, {user_id, ""}, LLMSettings.keys())
    shared = {r.key: r.value for r in rows if r.user_id == "" and (with_sensitive or not r.sensitive)}
    own = {
        r.key: r.value
        for r in rows
        if r.user_id == user_id and user_id and (own_endpoints or r.key not in ENDPOINT_KEYS)
    }
    return LLMSettings.from_mapping(shared).overridden_by(own)


async def for_server(session: AsyncSession, user: UserInfo) -> LLMSettings:
    """What the server's own calls on ``user``'s behalf use."""
    return await for_user(session, user.user_id, with_sensitive=True, own_endpoints=False)


async def attach_to_claim(session: AsyncSession, worker: UserInfo, task: dict[str, Any]) -> dict[str, Any]:
    """``task`` (as claimed by ``worker``) with ``llm_settings`` when its graph calls a provider."""
    graph = task.get("flow_comfy") or {}
    if any(node.get("class_type") in NODE_CLASSES for node in graph.values() if isinstance(node, dict)):
        owner = str(task.get("user_id") or "")
        settings = await for_user(
            session, owner, with_sensitive=worker.is_admin, own_endpoints=owner == worker.user_id
        )
        task["llm_settings"] = settings.to_mapping()
    return task


async def ollama_models(session: AsyncSession) -> list[OllamaModelItem]:
    """The models installed on the Ollama server the global settings name. As Visionatrix, a
    failure answers ``NotFound`` ("Error fetching Ollama models: ..."), naming the cause."""
    settings = await for_user(session, "", with_sensitive=True, own_endpoints=False)
    try:
        ollama = Ollama(settings.ollama_url, timeout=min(settings.timeout, LIST_TIMEOUT))
        models = await asyncio.to_thread(ollama.models)
    except ProviderError as exc:
        raise NotFound(f"Error fetching Ollama models: {exc.message}") from exc
    return [OllamaModelItem(model=m.model, size=m.size, modified_at=m.modified_at) for m in models]
