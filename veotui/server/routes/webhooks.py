"""Webhooks, for an admin: the deliveries with their attempts and state, and a test ping."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from veotui.backend.local import LocalBackend
from veotui.server.routes.caller import acting
from veotui.server.routes.job_id import checked
from veotui.server.schemas import DeliveriesOut, HookTestOut, answers

MAX_DELIVERIES_PAGE = 1000


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get(
        "/api/webhooks/deliveries",
        summary="Webhook deliveries with their attempts and state (admin)",
        responses=answers(DeliveriesOut, 401, 403, 404, 422),
    )
    async def deliveries(
        request: Request,
        job_id: Annotated[str | None, Query(description="only this job's deliveries")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_DELIVERIES_PAGE)] = 100,
    ) -> JSONResponse:
        found = await acting(backend, request).webhook_deliveries(checked(job_id) if job_id else None, limit=limit)
        return JSONResponse({"deliveries": [delivery.to_dict() for delivery in found]})

    @router.post(
        "/api/webhooks/test",
        summary="Send a ping event to every hook now (admin)",
        responses=answers(HookTestOut, 401, 403),
    )
    async def test_hooks(request: Request) -> JSONResponse:
        return JSONResponse({"results": await acting(backend, request).test_webhooks()})
