"""/vapi/settings: global (admin) and per-user key-value settings."""

from __future__ import annotations

from fastapi import APIRouter

from visionatrix import llm_settings, settings
from visionatrix.api.deps import AdminUser, CurrentUser, SessionDep
from visionatrix.schemas import GlobalSetting, OllamaModelItem, UserSetting

router = APIRouter(prefix="/vapi/settings", tags=["settings"])


@router.get("/get")
async def get(session: SessionDep, user: CurrentUser, key: str) -> str:
    """The user's value, else the global one; "" for secrets (API keys are write-only)."""
    return await settings.get_value(session, user, key)


@router.post("/global", status_code=204)
async def set_global(body: GlobalSetting, session: SessionDep, user: AdminUser) -> None:
    await settings.set_global(session, body.key, body.value, body.sensitive)


@router.post("/user", status_code=204)
async def set_user(body: UserSetting, session: SessionDep, user: CurrentUser) -> None:
    await settings.set_user(session, user, body.key, body.value)


@router.get("/ollama/models")
async def ollama_models(session: SessionDep, user: AdminUser) -> list[OllamaModelItem]:
    """The models installed on the configured Ollama server (``ollama_url``)."""
    return await llm_settings.ollama_models(session)
