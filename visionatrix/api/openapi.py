"""The OpenAPI description, completed with what FastAPI cannot see from the route signatures:
the error answers each route gives (from ``errors.STATUS`` raised in the services, the guards in
``middleware`` and ``uploads``, and the login limit), and HTTP Basic where credentials are needed.
Multipart bodies are described where the routes are (``openapi_extra``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_ERROR = {"$ref": "#/components/schemas/Error"}
_WHY = {
    400: "The request cannot be accepted; `detail` names the problem",
    401: "No or wrong credentials",
    403: "Not allowed (admins only, another user's worker, or a cross-site write)",
    404: "No such task, flow, file or worker (or not the caller's)",
    409: "The request clashes with the current state",
    412: "No LLM provider is configured for this",
    413: "A file part, text field or body beyond this server's limits",
    422: "The task failed (create-sync), or malformed parameters",
    429: "Too many failed logins from this client; retry after `Retry-After` seconds",
    502: "A model could not be downloaded, or the LLM provider failed",
    504: "The task (or the LLM provider) did not answer in time",
    507: "No room left in the data folder",
}
# the answers beyond the common ones (auth, login limit, cross-site writes, body limits)
_ROUTES: dict[tuple[str, str], tuple[int, ...]] = {
    # translate=1 asks the LLM provider at creation
    ("put", "/vapi/tasks/create/{flow_name}"): (400, 404, 412, 413, 502, 504, 507),
    ("put", "/vapi/tasks/create-sync/{flow_name}"): (400, 404, 412, 413, 422, 502, 504, 507),
    ("get", "/vapi/tasks/progress/{task_id}"): (404,),
    ("get", "/vapi/tasks/results"): (400, 404),
    ("get", "/vapi/tasks/inputs"): (404,),
    ("post", "/vapi/tasks/restart"): (400, 404),
    ("delete", "/vapi/tasks/task"): (404,),
    ("delete", "/vapi/tasks/queue/{task_id}"): (404,),
    ("put", "/vapi/tasks/update"): (400, 404),
    ("post", "/vapi/tasks/next"): (403,),
    ("put", "/vapi/tasks/progress"): (404,),
    ("put", "/vapi/tasks/results"): (400, 404, 413, 507),
    ("delete", "/vapi/tasks/lock"): (400, 404),
    ("post", "/vapi/workers/settings"): (404,),
    ("get", "/vapi/flows/not-installed"): (403,),
    ("post", "/vapi/flows/flow"): (400, 403, 404, 409, 502),
    ("put", "/vapi/flows/flow"): (400, 403, 409, 413),
    ("delete", "/vapi/flows/flow"): (403, 404, 409),
    ("get", "/vapi/flows/install-progress"): (403,),
    ("post", "/vapi/settings/global"): (403,),
    ("post", "/vapi/other/translate-prompt"): (400, 412, 502, 504),
    ("get", "/vapi/settings/ollama/models"): (403, 404, 412, 502, 504),
}
_UNLISTED = (400, 404)  # a route added without an entry here: its likely answers
_WRITES = ("post", "put", "patch", "delete")


def install(app: FastAPI, auth_required: bool) -> None:
    """Complete ``app.openapi()`` once, when it is first built."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build(), auth_required)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(spec: dict[str, Any], auth_required: bool) -> dict[str, Any]:
    components = spec.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = {
        "type": "object",
        "properties": {"detail": {"type": "string", "description": "what went wrong"}},
        "required": ["detail"],
    }
    if auth_required:
        components["securitySchemes"] = {"basic": {"type": "http", "scheme": "basic"}}
        spec["security"] = [{"basic": []}]
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method in _WRITES or method == "get":
                _document(operation, _statuses(method, path, operation, auth_required))
    return spec


def _statuses(method: str, path: str, operation: dict[str, Any], auth_required: bool) -> set[int]:
    codes = set(_ROUTES.get((method, path), _UNLISTED))
    if auth_required:
        codes |= {401, 429}
    if method in _WRITES:
        codes.add(403)  # a cross-site write
    if "requestBody" in operation:
        codes |= {400, 413}  # an unreadable body, or one past the limits
    return codes


def _document(operation: dict[str, Any], codes: set[int]) -> None:
    responses = operation.setdefault("responses", {})
    for code in sorted(codes):
        answer = responses.setdefault(str(code), {"description": _WHY[code]})
        answer.setdefault("content", {"application/json": {"schema": _ERROR}})
        if code == 401:
            answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
        if code == 429:
            answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "required": True}}
