"""HTTP Basic credentials → the acting user. DEFAULT mode acts as the built-in admin."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.errors import Unauthorized
from visionatrix.logins import Verifier
from visionatrix.schemas import UserInfo
from visionatrix.users import DEFAULT_ADMIN


def basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized("authentication required (HTTP Basic)")
    try:
        name, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed Basic credentials") from exc
    if not sep:
        raise Unauthorized("malformed Basic credentials")
    return name, password


async def current_user(
    request: Request, session: AsyncSession, verifier: Verifier, required: bool
) -> UserInfo:
    if not required:
        return DEFAULT_ADMIN
    name, password = basic_credentials(request)
    client = request.client.host if request.client else ""
    return await verifier.verify(session, name, password, client)
