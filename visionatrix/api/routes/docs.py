"""The API's own description (/openapi.json, /docs, /redoc), behind the same credentials as the
rest of it: in SERVER mode a stranger learns nothing of the routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from visionatrix.api.deps import CurrentUser

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request, user: CurrentUser) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger(request: Request, user: CurrentUser) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=_spec(request), title=f"{request.app.title} - API")


@router.get("/redoc")
async def redoc(request: Request, user: CurrentUser) -> HTMLResponse:
    return get_redoc_html(openapi_url=_spec(request), title=f"{request.app.title} - API")


def _spec(request: Request) -> str:
    return request.scope.get("root_path", "") + "/openapi.json"
