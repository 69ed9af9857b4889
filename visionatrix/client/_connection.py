"""Where the client connects and as whom: arguments first, then the environment, then defaults."""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_URL = "http://localhost:8288"
ENV_URL = "VISIONATRIX_API_URL"
ENV_USERNAME = "VISIONATRIX_USERNAME"
ENV_PASSWORD = "VISIONATRIX_PASSWORD"
PROBE_TIMEOUT = 3.0  # is_available() must answer fast even when the host swallows packets
USER_AGENT = "visionatrix-client"


def httpx_options(
    base_url: str | None, username: str | None, password: str | None, timeout: float
) -> dict[str, Any]:
    """Keyword arguments shared by ``httpx.Client`` and ``httpx.AsyncClient``."""
    url = base_url or os.environ.get(ENV_URL) or DEFAULT_URL
    user = username if username is not None else os.environ.get(ENV_USERNAME)
    secret = password if password is not None else os.environ.get(ENV_PASSWORD, "")
    return {
        "base_url": url.rstrip("/"),
        "auth": httpx.BasicAuth(user, secret or "") if user else None,
        "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        "headers": {"User-Agent": USER_AGENT},
    }
