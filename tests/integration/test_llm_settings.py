"""Which LLM settings reach whom, on real SQLite and PostgreSQL: a user's own values win (but a
user's endpoints only on the user's own worker), the server's own calls use the admin's secrets,
a worker gets them only when it is an admin's."""

from __future__ import annotations

import asyncio
from typing import Any

from visionatrix import llm_settings, settings
from visionatrix.config import _async_url
from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head
from visionatrix.llm import settings as llm_config
from visionatrix.schemas import UserInfo

ADMIN = UserInfo(user_id="admin", is_admin=True)
ALICE = UserInfo(user_id="alice")
LLM_GRAPH = {"1": {"class_type": "Ask_Gemini", "inputs": {}}, "2": {"class_type": "SaveText|pysssss"}}


async def _scenario(url: str) -> dict[str, Any]:
    engine = create_engine(_async_url(url))
    await upgrade_to_head(engine)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            await settings.set_global(session, "google_api_key", "admin-key", sensitive=False)
            await settings.set_global(session, "gemini_model", "gemini-2.5-flash", sensitive=False)
            await settings.set_global(session, "ollama_url", "http://ollama:11434", sensitive=False)
            await settings.set_user(session, ALICE, "ollama_url", "http://alice-ollama:11434")
            await settings.set_user(session, ALICE, "gemini_model", "gemini-1.5-alice")
        async with sessions() as session:

            def claim(worker: UserInfo, graph: dict[str, Any]) -> Any:
                task = {"task_id": 1, "user_id": "alice", "flow_comfy": graph}
                return llm_settings.attach_to_claim(session, worker, task)

            return {
                "read_by_admin": await settings.get_value(session, ADMIN, "google_api_key"),
                "server": await llm_settings.for_server(session, ALICE),
                "admin_worker": await claim(ADMIN, LLM_GRAPH),
                "own_worker": await claim(ALICE, LLM_GRAPH),
                "no_llm_nodes": await claim(ADMIN, {"1": {"class_type": "SaveImage"}}),
            }
    finally:
        await engine.dispose()


def test_settings_reach_the_server_and_workers_as_they_should(db_url: str) -> None:
    seen = asyncio.run(_scenario(db_url))
    assert seen["read_by_admin"] == ""  # write-only, even for the admin who wrote it
    server = seen["server"]
    # the server calls the endpoints the admin set, never one a user chose; a user's model counts
    assert server.google_api_key == "admin-key" and server.ollama_url == "http://ollama:11434"
    assert server.gemini_model == "gemini-1.5-alice"
    assert seen["admin_worker"]["llm_settings"] == {
        "google_api_key": "admin-key",
        "gemini_model": "gemini-1.5-alice",
        "ollama_url": "http://ollama:11434",
    }
    # a secret is stored sensitive whatever the request said: a user's own worker never gets it,
    # but it does call the user's own endpoints
    assert seen["own_worker"]["llm_settings"] == {
        "gemini_model": "gemini-1.5-alice",
        "ollama_url": "http://alice-ollama:11434",
    }
    assert "llm_settings" not in seen["no_llm_nodes"]


def test_a_workers_environment_wins_over_what_the_server_sent() -> None:
    sent = {"ollama_url": "http://server-side:11434", "gemini_model": "gemini-2.5-flash"}
    environ = {"OLLAMA_URL": "http://worker-local:11434", "GOOGLE_API_KEY": "local-key", "PATH": "/bin"}
    run = llm_config.for_run(sent, environ)
    assert run.ollama_url == "http://worker-local:11434" and run.google_api_key == "local-key"
    assert run.gemini_model == "gemini-2.5-flash"
    assert llm_config.for_run(None, {}) == llm_config.LLMSettings()
