"""The OpenAPI description, completed with what FastAPI cannot see."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    pass
