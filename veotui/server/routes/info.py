"""This server: its generator, slots, data directory and version."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from veotui import __version__
from veotui.backend.local import LocalBackend
from veotui.server.schemas import InfoOut, answers


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get(
        "/api/info", summary="Generator, slots and data directory of this server", responses=answers(InfoOut, 401)
    )
    async def info() -> JSONResponse:
        return JSONResponse({**(await backend.info()).to_dict(), "version": __version__})
