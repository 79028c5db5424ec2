"""Figures: queue and outcome figures and their hourly series as JSON, and the Prometheus
exposition."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from veotui.backend.local import MAX_SERIES_HOURS, LocalBackend
from veotui.server.schemas import MetricsOut, SeriesOut, answers


def add_routes(router: APIRouter, backend: LocalBackend, registry: CollectorRegistry) -> None:
    @router.get("/api/metrics", summary="Queue and outcome figures", responses=answers(MetricsOut, 401))
    async def metrics() -> JSONResponse:
        return JSONResponse(await backend.metrics())

    @router.get(
        "/api/metrics/series",
        summary="Jobs ended per hour and the longest queue of each hour",
        responses=answers(SeriesOut, 401, 422),
    )
    async def metric_series(
        hours: Annotated[
            int, Query(ge=1, le=MAX_SERIES_HOURS, description="hours back, the current one included")
        ] = 24,
    ) -> JSONResponse:
        return JSONResponse({"hours": hours, "series": await backend.metric_series(hours)})

    @router.get(
        "/metrics",
        summary="Prometheus metrics (text exposition format)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **answers(None, 401)},
    )
    async def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
