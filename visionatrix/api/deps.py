"""Annotated dependencies for routes: the session, the services, the acting user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.api.auth import current_user
from visionatrix.api.services import Services
from visionatrix.errors import Forbidden
from visionatrix.schemas import UserInfo


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def _session(services: Annotated[Services, Depends(_services)]) -> AsyncIterator[AsyncSession]:
    async with services.sessions() as session:
        yield session


ServicesDep = Annotated[Services, Depends(_services)]
SessionDep = Annotated[AsyncSession, Depends(_session)]


async def _user(request: Request, services: ServicesDep, session: SessionDep) -> UserInfo:
    return await current_user(request, session, services.verifier, services.config.auth_required)


CurrentUser = Annotated[UserInfo, Depends(_user)]


async def _admin(user: CurrentUser) -> UserInfo:
    if not user.is_admin:
        raise Forbidden("this route is for administrators only")
    return user


AdminUser = Annotated[UserInfo, Depends(_admin)]
