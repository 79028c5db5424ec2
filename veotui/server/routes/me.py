"""Who the token is: user, role, and their own budget, spend today and limit."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from veotui.backend.local import LocalBackend
from veotui.server.routes.caller import acting
from veotui.server.schemas import MeOut, answers


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get(
        "/api/me",
        summary="Who the token is: user, role, and their own daily budget, spend today and limit",
        responses=answers(MeOut, 401),
    )
    async def me(request: Request) -> JSONResponse:
        return JSONResponse((await acting(backend, request).me()).to_dict())
