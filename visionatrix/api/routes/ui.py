"""The web UI: plain ES modules, HTML and CSS shipped in the package (``visionatrix/ui/static``),
served at ``/`` with the same auth as the API. Nothing is built and nothing comes from the internet."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from visionatrix.api.deps import CurrentUser

STATIC = Path(__file__).resolve().parents[2] / "ui" / "static"
_FILES = StaticFiles(directory=STATIC, check_dir=False)
_BASE = "<!--base-->"

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/workflows/{name}")
@router.get("/settings")
@router.get("/settings/workers")
async def page(request: Request, user: CurrentUser) -> HTMLResponse:
    """Every page of the UI is the same document; the client-side router draws the one asked for."""
    root = html.escape(request.scope.get("root_path", "").rstrip("/"))
    text = (STATIC / "index.html").read_text().replace(_BASE, f'<base href="{root}/">')
    return HTMLResponse(text, headers={"Cache-Control": "no-cache"})


@router.get("/ui/{path:path}")
async def asset(path: str, request: Request, user: CurrentUser) -> Response:
    response = await _FILES.get_response(path, request.scope)
    # revalidate (ETag) on each load, so a server upgrade never runs old scripts
    response.headers["Cache-Control"] = "no-cache"
    return response
