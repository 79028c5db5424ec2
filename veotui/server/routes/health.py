"""Liveness, for load balancers and clients without a token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from veotui.backend.local import LocalBackend
from veotui.server.schemas import HealthDegradedOut, HealthOut, answers

#: Why the server is degraded, by storage state. Said without a token, so without paths or
#: job ids: GET /api/info has the full reason.
DEGRADED_DETAIL = {
    "full": "storage full: the data directory's disk is full, so nothing new starts; "
    "veotui carries on by itself once space is freed (GET /api/info says more)",
    "read_only": "storage read-only: the data directory cannot be written, so nothing new starts; "
    "veotui carries on by itself once it can write (GET /api/info says more)",
    "damaged": "database damaged: a check after start found the database damaged, so nothing new starts; "
    "stop veotui and run veotui doctor --data (GET /api/info says more)",
    "unavailable": "database unreachable: PostgreSQL cannot be reached, so nothing new starts; "
    "veotui reconnects by itself (GET /api/info says more)",
}


def add_routes(router: APIRouter, backend: LocalBackend) -> None:
    @router.get(
        "/api/health",
        summary="Liveness; 503 while the data directory cannot be written; never needs a token",
        responses={**answers(HealthOut), 503: {"model": HealthDegradedOut}},
    )
    async def health() -> JSONResponse:
        storage = backend.storage_state()
        if not storage.ok:
            body = {"status": "degraded", "storage": storage.state, "detail": DEGRADED_DETAIL[storage.state]}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok"})
