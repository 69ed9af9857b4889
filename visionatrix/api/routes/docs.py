"""/openapi.json with one create route per installed flow, and offline Swagger UI (/docs) and ReDoc
(/redoc): their files come from a package on disk, never from the internet. Same auth as the API."""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from visionatrix.api.deps import CurrentUser, ServicesDep, SessionDep
from visionatrix.api.flow_openapi import with_flow_paths

router = APIRouter(include_in_schema=False)

# Swagger UI and ReDoc dist files, with their licenses, as the fastapi-standalone-docs wheel ships them
_VENDOR = Path(str(resources.files("fastapi_standalone_docs"))) / "static"
_ASSETS = {
    "swagger-ui.css": _VENDOR / "swagger" / "swagger-ui.css",
    "swagger-ui-bundle.js": _VENDOR / "swagger" / "swagger-ui-bundle.js",
    "swagger-ui.LICENSE": _VENDOR / "swagger" / "LICENSE",
    "redoc.standalone.js": _VENDOR / "redoc" / "redoc.standalone.js",
    "redoc.standalone.js.LICENSE.txt": _VENDOR / "redoc" / "redoc.standalone.js.LICENSE.txt",
}
_FILES = StaticFiles(directory=_VENDOR, check_dir=False)


@router.get("/openapi.json")
async def openapi(request: Request, services: ServicesDep, session: SessionDep, user: CurrentUser) -> Any:
    schema = with_flow_paths(request.app.openapi(), await services.flows.installed(session))
    root = request.scope.get("root_path", "")
    if root:
        schema["servers"] = [{"url": root}]
    return schema


@router.get("/docs/assets/{name}")
async def asset(name: str, request: Request, user: CurrentUser) -> Response:
    path = _ASSETS.get(name)
    if path is None:
        return Response(status_code=404)
    response = await _FILES.get_response(str(path.relative_to(_VENDOR)), request.scope)
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/docs")
async def swagger(request: Request, user: CurrentUser) -> HTMLResponse:
    return HTMLResponse(_page(request, "Visionatrix API", _SWAGGER))


@router.get("/redoc")
async def redoc(request: Request, user: CurrentUser) -> HTMLResponse:
    return HTMLResponse(_page(request, "Visionatrix API — ReDoc", _REDOC))


# No inline script: the pages keep working under a strict Content-Security-Policy.
_SWAGGER = """<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
</head><body><div id="swagger-ui" data-openapi="{root}/openapi.json"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{root}/ui/docs-init.js"></script>"""
_REDOC = """</head><body><redoc spec-url="{root}/openapi.json"></redoc>
<script src="{root}/docs/assets/redoc.standalone.js"></script>"""


def _page(request: Request, title: str, body: str) -> str:
    root = html.escape(request.scope.get("root_path", "").rstrip("/"))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="{root}/ui/favicon.svg">{body.format(root=root)}</body></html>'
    )
