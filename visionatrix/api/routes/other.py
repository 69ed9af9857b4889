"""/vapi/other: who am I."""

from __future__ import annotations

from fastapi import APIRouter

from visionatrix.api.deps import CurrentUser
from visionatrix.schemas import UserInfo

router = APIRouter(prefix="/vapi/other", tags=["other"])


@router.get("/whoami")
async def whoami(user: CurrentUser) -> UserInfo:
    return user
