"""/vapi/other: who am I, translate a prompt."""

from __future__ import annotations

from fastapi import APIRouter

from visionatrix.api.deps import CurrentUser, SessionDep
from visionatrix.schemas import TranslatePromptRequest, TranslatePromptResponse, UserInfo
from visionatrix.tasks import translation

router = APIRouter(prefix="/vapi/other", tags=["other"])


@router.get("/whoami")
async def whoami(user: CurrentUser) -> UserInfo:
    return user


@router.post("/translate-prompt")
async def translate_prompt(
    body: TranslatePromptRequest, session: SessionDep, user: CurrentUser
) -> TranslatePromptResponse:
    """The prompt in English, by the user's ``translations_provider`` (412 when none is set)."""
    return await translation.translate_prompt(session, user, body.prompt, body.system_prompt)
