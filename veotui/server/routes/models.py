"""The Veo models: what each accepts, its prices, and where each fact comes from."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from veotui.backend.local import LocalBackend
from veotui.server.schemas import ModelsOut, answers


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get(
        "/api/models",
        summary="Each model: what it accepts, its prices by resolution, whether it is preview, and the source of each fact",
        responses=answers(ModelsOut, 401),
    )
    async def models() -> JSONResponse:
        return JSONResponse(await backend.models())
