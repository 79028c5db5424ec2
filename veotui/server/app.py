"""The FastAPI application: the seven endpoints of the original web service's API over the engine, plus the job lists,
events, metrics, health, and the lookups the remote backend needs (info, timeline, resolve).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veotui import __version__
from veotui.backend.base import AUDIT_PAGE, MAX_AUDIT_PAGE, QUEUE_PAGE
from veotui.backend.local import MAX_PAGE_ROWS, MAX_SERIES_HOURS, LocalBackend
from veotui.core.access import ADMIN, Action
from veotui.core.capabilities import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    DURATIONS,
    MAX_PROMPT_CHARS,
    MAX_REFERENCES,
    MAX_SEED,
    MAX_VIDEOS,
    MODELS,
    PERSON_GENERATION,
    REFERENCE_TYPES,
    RESOLUTIONS,
)
from veotui.core.errors import (
    ERROR_HEADER,
    Forbidden,
    InvalidRequest,
    JobNotFound,
    StorageUnavailable,
    TooLarge,
    VeotuiError,
    clipped,
)
from veotui.core.idempotency import KEY_HEADER, REPLAYED_HEADER, check_key
from veotui.core.ids import is_job_id
from veotui.core.job import Job
from veotui.datadir.health import StorageGuard
from veotui.logs import event
from veotui.server.auth import ACTOR_KEY, BearerAuth
from veotui.server.bodies import read_control, read_submission
from veotui.server.downloads import CountedFileResponse
from veotui.server.logs import LogStreams
from veotui.server.prometheus import Collector
from veotui.server.schemas import (
    AuditOut,
    DeletedOut,
    DeliveriesOut,
    HealthDegradedOut,
    HealthOut,
    HookTestOut,
    InfoOut,
    JobListsOut,
    JobOut,
    MeOut,
    MetricsOut,
    ModelsOut,
    PicturesOut,
    QueueOut,
    ResolvedOut,
    SeriesOut,
    TimelineOut,
    answers,
)
from veotui.server.security import CrossSiteGuard, HostGuard
from veotui.server.streams import EventStreams
from veotui.server.users import Users
from veotui.settings import Settings
from veotui.store.errors import DATABASE_ERRORS

log = logging.getLogger(__name__)

MAX_HISTORY_PAGE = 1000
_HEALTH_DETAIL = {
    "full": "storage full: the data directory's disk is full, so nothing new starts; "
    "veotui carries on by itself once space is freed (GET /api/info says more)",
    "read_only": "storage read-only: the data directory cannot be written, so nothing new starts; "
    "veotui carries on by itself once it can write (GET /api/info says more)",
    "damaged": "database damaged: a check after start found the database damaged, so nothing new starts; "
    "stop veotui and run veotui doctor --data (GET /api/info says more)",
    "unavailable": "database unreachable: PostgreSQL cannot be reached, so nothing new starts; "
    "veotui reconnects by itself (GET /api/info says more)",
}
MAX_QUEUE_PAGE = 1000
#: An error's sentence is cut beyond this many characters.
MAX_DETAIL_CHARS = 1000

JobId = Annotated[str, Path(description="a job id (UUID4)")]


def create_app(backend: LocalBackend, settings: Settings, *, keepalive: float = 15.0) -> FastAPI:
    """The API over a started :class:`LocalBackend`. ``keepalive``: seconds between SSE
    comments while no job changes.

    Routes return ``JSONResponse`` themselves: the job JSON is already plain data, and
    FastAPI's response-model validation would double the cost of a status read."""
    app = FastAPI(
        title="veotui",
        version=__version__,
        description="Google Veo video generation jobs: two processing slots, a FIFO queue, "
        'durable and resumable. Errors are {"detail": "<sentence>"}. See docs/api.md.',
        # A redirect would name the request's Host; a path with a slash too many is a 404 that
        # names the right one.
        redirect_slashes=False,
    )
    streams = EventStreams(backend, keepalive)
    log_streams = LogStreams(settings.data_dir)
    app.state.backend = backend
    app.state.streams = streams
    users = Users(backend, settings)
    app.state.users = users
    app.state.log_streams = log_streams
    # The last added runs first: the Host, then where the request comes from, then the token.
    app.add_middleware(BearerAuth, tokens=lambda: users.tokens)
    app.add_middleware(CrossSiteGuard, allowed_origins=settings.allowed_origins, form_paths={"/api/generate"})
    bound = urlsplit(backend.url).hostname if backend.url else None
    app.add_middleware(HostGuard, allowed_hosts=settings.allowed_hosts, bound=bound)
    app.add_middleware(RequestLog)
    _add_error_handlers(app, backend.storage)
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    registry.register(Collector(backend.store, backend.dir_size, uses_bucket=bool(settings.gcs_bucket)))
    app.state.registry = registry

    def job_json(job: Job) -> JSONResponse:
        return JSONResponse(job.to_dict())

    def caller(request: Request) -> LocalBackend:
        """The engine acting for the request's caller: its rules decide what they may do."""
        client = request.scope.get("client")
        return backend.acting_for(request.scope.get(ACTOR_KEY, ADMIN), client[0] if client else None)

    @app.post(
        "/api/generate",
        status_code=202,
        openapi_extra=GENERATE_BODY,
        summary="Submit a job",
        responses={
            **answers(JobOut, 400, 401, 403, 404, 409, 413, 415, 422, 503, 507, status=202),
            200: {"model": JobOut, "description": "a replay: the job this Idempotency-Key made the first time"},
        },
    )
    async def generate(request: Request) -> JSONResponse:
        key = request.headers.get(KEY_HEADER)
        key = check_key(key) if key is not None else None
        submission = await read_submission(request)
        job, replayed = await caller(request).submit_keyed(
            submission.fields,
            submission.image,
            submission.image_name,
            last_frame=submission.last_frame,
            references=submission.references,
            idempotency_key=key,
        )
        if replayed:
            return JSONResponse(job.to_dict(), status_code=200, headers={REPLAYED_HEADER: "true"})
        return JSONResponse(job.to_dict(), status_code=202)

    @app.get(
        "/api/webhooks/deliveries",
        summary="Webhook deliveries with their attempts and state (admin)",
        responses=answers(DeliveriesOut, 401, 403, 404, 422),
    )
    async def deliveries(
        request: Request,
        job_id: Annotated[str | None, Query(description="only this job's deliveries")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = 100,
    ) -> JSONResponse:
        found = await caller(request).webhook_deliveries(_checked(job_id) if job_id else None, limit=limit)
        return JSONResponse({"deliveries": [delivery.to_dict() for delivery in found]})

    @app.post(
        "/api/webhooks/test",
        summary="Send a ping event to every hook now (admin)",
        responses=answers(HookTestOut, 401, 403),
    )
    async def test_hooks(request: Request) -> JSONResponse:
        return JSONResponse({"results": await caller(request).test_webhooks()})

    # Clients poll this one: a PlainRoute, documented like the others but called without
    # FastAPI's parameter machinery, which costs several times the work of the answer. Its
    # parameter is documented by hand; _checked refuses a non-UUID.
    async def status(request: Request) -> JSONResponse:
        return job_json(await backend.get(_checked(request.path_params["job_id"])))

    app.router.add_api_route(
        "/api/status/{job_id}",
        status,
        methods=["GET"],
        summary="One job",
        responses=answers(JobOut, 401, 404, 422),
        openapi_extra={"parameters": [STATUS_JOB_ID]},
        route_class_override=PlainRoute,
    )

    @app.post(
        "/api/cancel/{job_id}",
        summary="Cancel a queued or processing job",
        responses=answers(JobOut, 401, 403, 404, 409, 422),
    )
    async def cancel(job_id: JobId, request: Request) -> JSONResponse:
        return job_json(await caller(request).cancel(_checked(job_id)))

    @app.post(
        "/api/retry/{job_id}",
        summary="Queue a failed or cancelled job again",
        responses=answers(JobOut, 401, 403, 404, 409, 422),
    )
    async def retry(job_id: JobId, request: Request) -> JSONResponse:
        return job_json(await caller(request).retry(_checked(job_id)))

    @app.delete(
        "/api/delete/{job_id}",
        summary="Delete a job, its files and its cloud files",
        responses=answers(DeletedOut, 401, 403, 404, 422, 503, 507),
    )
    async def delete(job_id: JobId, request: Request) -> JSONResponse:
        await caller(request).delete(_checked(job_id))
        return JSONResponse({"job_id": job_id, "deleted": True})

    @app.get(
        "/api/download/{job_id}",
        summary="The zip of a completed job's videos",
        response_class=CountedFileResponse,
        status_code=200,
        responses={200: {"content": {"application/zip": {}}}, **answers(None, 401, 404, 409, 422)},
    )
    async def download_zip(job_id: JobId, request: Request) -> CountedFileResponse:
        path = await backend.zip_file(_checked(job_id))
        acting = caller(request)
        return CountedFileResponse(
            path,
            media_type="application/zip",
            filename=f"veotui_{job_id[:8]}_videos.zip",
            on_complete=lambda: acting.record_download(job_id),
        )

    @app.get(
        "/api/download/{job_id}/video/{index}",
        summary="One video (1-based index); HTTP Range supported",
        response_class=CountedFileResponse,
        status_code=200,
        responses={
            200: {"content": {"video/mp4": {}}},
            206: {"description": "a range of the video"},
            **answers(None, 401, 404, 409, 422),
        },
    )
    async def download_video(
        job_id: JobId, index: Annotated[int, Path(description="1-based")], request: Request
    ) -> CountedFileResponse:
        path = await backend.video_file(_checked(job_id), index)
        acting = caller(request)
        return CountedFileResponse(
            path,
            media_type="video/mp4",
            filename=f"veotui_{job_id[:8]}_{path.name}",
            on_complete=lambda: acting.record_download(job_id, index),
        )

    @app.get(
        "/api/jobs/{job_id}/inputs/{name}",
        summary="One input image of a job (uploaded_image.jpg, last_frame.jpg, reference_N.jpg), as stored",
        response_class=CountedFileResponse,
        status_code=200,
        responses={200: {"content": {"image/jpeg": {}}}, **answers(None, 401, 404, 422)},
    )
    async def input_image(job_id: JobId, name: Annotated[str, Path(max_length=40)]) -> CountedFileResponse:
        path = await backend.input_file(_checked(job_id), name)
        return CountedFileResponse(
            path, media_type="image/jpeg", filename=f"veotui_{job_id[:8]}_{name}", on_complete=lambda: None
        )

    @app.get(
        "/api/jobs",
        summary="Processing, queued (FIFO) and history (newest first, paged)",
        responses=answers(JobListsOut, 401, 422),
    )
    async def jobs(
        limit: Annotated[int, Query(ge=0, le=MAX_HISTORY_PAGE, description="history rows")] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_PAGE_ROWS, description="history rows to skip")] = 0,
        q: Annotated[str | None, Query(max_length=200, description="filter text: prompt, id, status or user")] = None,
        queue_limit: Annotated[int, Query(ge=0, le=MAX_QUEUE_PAGE, description="queued rows")] = QUEUE_PAGE,
        queue_offset: Annotated[int, Query(ge=0, le=MAX_PAGE_ROWS, description="queued rows to skip")] = 0,
    ) -> JSONResponse:
        lists = await backend.list_jobs(
            history_limit=limit,
            history_offset=offset,
            text=q or None,
            queue_limit=queue_limit,
            queue_offset=queue_offset,
        )
        return JSONResponse(lists.to_dict())

    @app.get("/api/queue", summary="Whether the queue is paused, and its length", responses=answers(QueueOut, 401))
    async def queue() -> JSONResponse:
        return JSONResponse((await backend.queue()).to_dict())

    @app.post(
        "/api/queue/pause",
        summary="Start no new job until resumed (processing jobs go on)",
        openapi_extra=PAUSE_BODY,
        responses=answers(QueueOut, 400, 401, 403, 413, 422),
    )
    async def pause(request: Request) -> JSONResponse:
        body = await read_control(request, "POST /api/queue/pause", required=False)
        unknown = sorted(set(body) - {"reason"})
        if unknown:
            raise InvalidRequest(f"unknown field {clipped(unknown[0])}; POST /api/queue/pause takes only reason")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidRequest("reason must be text")
        return JSONResponse((await caller(request).pause(reason)).to_dict())

    @app.post("/api/queue/resume", summary="Start queued jobs again", responses=answers(QueueOut, 401, 403))
    async def resume(request: Request) -> JSONResponse:
        return JSONResponse((await caller(request).resume()).to_dict())

    @app.post(
        "/api/move/{job_id}",
        summary="Move a queued job: to top, bottom, up, down, or a 1-based position",
        openapi_extra=MOVE_BODY,
        responses=answers(JobOut, 400, 401, 403, 404, 409, 413, 422),
    )
    async def move(job_id: JobId, request: Request) -> JSONResponse:
        job_id = _checked(job_id)
        body = await read_control(request, "POST /api/move", required=True)
        unknown = sorted(set(body) - {"to", "position"})
        if unknown:
            raise InvalidRequest(f"unknown field {clipped(unknown[0])}; POST /api/move takes to or position")
        to, position = body.get("to"), body.get("position")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
            raise InvalidRequest(f"position must be a whole number of at least 1, got {clipped(position)}")
        if to is not None and not isinstance(to, str):
            raise InvalidRequest(f"to must be top, bottom, up or down, got {clipped(to)}")
        return job_json(await caller(request).move(job_id, to=to, position=position))

    @app.get(
        "/api/me",
        summary="Who the token is: user, role, and their own daily budget, spend today and limit",
        responses=answers(MeOut, 401),
    )
    async def me(request: Request) -> JSONResponse:
        return JSONResponse((await caller(request).me()).to_dict())

    @app.get(
        "/api/audit",
        summary="The audit log, newest first, paged (admin)",
        responses=answers(AuditOut, 401, 403, 422),
    )
    async def audit(
        request: Request,
        user: Annotated[str | None, Query(max_length=200, description="only this user's entries")] = None,
        job_id: Annotated[str | None, Query(max_length=36, description="only this job's entries")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE, description="entries")] = AUDIT_PAGE,
        offset: Annotated[int, Query(ge=0, le=MAX_PAGE_ROWS, description="entries to skip")] = 0,
    ) -> JSONResponse:
        entries = await caller(request).audit(user=user or None, job_id=job_id or None, limit=limit, offset=offset)
        return JSONResponse({"entries": [entry.to_dict() for entry in entries], "limit": limit, "offset": offset})

    @app.get(
        "/api/jobs/{job_id}/events",
        summary="A job's timeline, oldest first",
        responses=answers(TimelineOut, 401, 404, 422),
    )
    async def timeline(job_id: JobId) -> JSONResponse:
        events = await backend.timeline(_checked(job_id))
        return JSONResponse({"job_id": job_id, "events": [event.to_dict() for event in events]})

    @app.get(
        "/api/jobs/{job_id}/pictures",
        summary="The job's pictures: input images, then first, middle and last frames of each video",
        responses=answers(PicturesOut, 401, 404, 422),
    )
    async def pictures(job_id: JobId) -> JSONResponse:
        rows = await backend.job_pictures(_checked(job_id))
        return JSONResponse(
            {
                "job_id": job_id,
                "rows": [
                    {
                        "title": title,
                        "pictures": [
                            {"caption": caption, "name": path.name, "url": f"/api/jobs/{job_id}/pictures/{path.name}"}
                            for caption, path in pictures
                        ],
                    }
                    for title, pictures in rows
                ],
            }
        )

    @app.get(
        "/api/jobs/{job_id}/pictures/{name}",
        summary="One picture of the job (PNG), as listed by /api/jobs/{job_id}/pictures",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, **answers(None, 401, 404, 422)},
    )
    async def picture(job_id: JobId, name: Annotated[str, Path(max_length=200)]) -> FileResponse:
        return FileResponse(backend.picture_path(_checked(job_id), name), media_type="image/png")

    @app.get(
        "/api/resolve/{prefix}",
        summary="The one job id that starts with a prefix",
        responses=answers(ResolvedOut, 401, 404, 422),
    )
    async def resolve(prefix: Annotated[str, Path(max_length=36)]) -> JSONResponse:
        return JSONResponse({"job_id": await backend.resolve(prefix)})

    @app.get(
        "/api/events",
        summary="Job changes as Server-Sent Events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, **answers(None, 401)},
    )
    async def events() -> StreamingResponse:
        return streams.open()

    @app.get("/api/metrics", summary="Queue and outcome figures", responses=answers(MetricsOut, 401))
    async def metrics() -> JSONResponse:
        return JSONResponse(await backend.metrics())

    @app.get(
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

    @app.get(
        "/metrics",
        summary="Prometheus metrics (text exposition format)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **answers(None, 401)},
    )
    async def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/api/models",
        summary="Each model: what it accepts, its prices by resolution, whether it is preview, and the source of each fact",
        responses=answers(ModelsOut, 401),
    )
    async def models() -> JSONResponse:
        return JSONResponse(await backend.models())

    @app.get(
        "/api/logs",
        summary="The server's log, filtered as `veotui logs` does (the server's own token only)",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/plain": {}}}, **answers(None, 401, 403, 422)},
    )
    async def logs(
        request: Request,
        job: Annotated[
            str | None, Query(max_length=36, description="only records of the job whose id starts with this")
        ] = None,
        since: Annotated[str | None, Query(max_length=40, description="only the last 90s, 15m, 2h, 1d…")] = None,
        follow: Annotated[bool, Query(description="keep sending records as they are written")] = False,
        format: Annotated[Literal["text", "json"], Query(description="text, or one JSON object a line")] = "text",
    ) -> StreamingResponse:
        caller(request).allow(Action.READ_LOG)
        return log_streams.open(job=job, since=since, follow=follow, as_json=format == "json")

    @app.get("/api/info", summary="Generator, slots and data directory of this server", responses=answers(InfoOut, 401))
    async def info() -> JSONResponse:
        return JSONResponse({**(await backend.info()).to_dict(), "version": __version__})

    @app.get(
        "/api/health",
        summary="Liveness; 503 while the data directory cannot be written; never needs a token",
        responses={**answers(HealthOut), 503: {"model": HealthDegradedOut}},
    )
    async def health() -> JSONResponse:
        storage = backend.storage_state()
        if not storage.ok:
            # Without a token, so without paths or job ids: /api/info has the full reason.
            body = {"status": "degraded", "storage": storage.state, "detail": _HEALTH_DETAIL[storage.state]}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok"})

    return app


class PlainRoute(APIRoute):
    """A route in the OpenAPI document like any other, whose endpoint is called as a plain
    Starlette one: ``endpoint(request) -> Response``, no parameters solved or validated."""

    def __init__(self, path: str, endpoint: Callable[[Request], Awaitable[Response]], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.app = request_response(endpoint)


#: The job id parameter as FastAPI documents one declared as ``JobId``.
STATUS_JOB_ID: dict[str, Any] = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "a job id (UUID4)",
    "schema": {"type": "string", "title": "Job Id", "description": "a job id (UUID4)"},
}


class RequestLog:
    """Every request at debug level: method, path (never the query or headers), status,
    milliseconds. Costs nothing when debug is off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.DEBUG):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            event(
                log,
                logging.DEBUG,
                "http.request",
                "%s %s %d",
                scope["method"],
                scope["path"],
                status[0],
                method=scope["method"],
                path=scope["path"],
                status=status[0],
                ms=round((time.perf_counter() - started) * 1000, 1),
                client=(scope.get("client") or ("?",))[0],
            )


def _checked(job_id: str) -> str:
    """Refuse anything but a UUID before it reaches the store or a file path."""
    if not is_job_id(job_id):
        raise JobNotFound(job_id, f"{job_id[:60]!r} is not a job id; job ids are UUIDs (use GET /api/resolve/PREFIX)")
    return job_id


def _error(status: int, detail: str, kind: str | None = None, *, close: bool = False) -> JSONResponse:
    # The detail may quote the request; a lone surrogate in it must not break the answer,
    # and a message that quotes too much is cut (the values it quotes are cut already).
    detail = detail.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
    headers = {ERROR_HEADER: kind} if kind else {}
    if close:
        headers["connection"] = "close"
    body = {"detail": detail}
    if kind == Forbidden.__name__:
        body["kind"] = Forbidden.kind
    return JSONResponse(body, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI, storage: StorageGuard) -> None:
    @app.exception_handler(VeotuiError)
    async def veotui_error(request: Request, exc: VeotuiError) -> JSONResponse:
        # A body refused halfway is left unread: closing the connection stops the client
        # from sending the rest (a keep-alive connection would read and discard it all).
        return _error(exc.http_status, exc.message, type(exc).__name__, close=isinstance(exc, TooLarge))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, describe_validation(exc.errors()), "InvalidRequest")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            path = request.url.path
            detail = f"there is no {request.method} {path}; see /openapi.json for the API"
            if len(path) > 1 and path.endswith("/"):
                detail = f"there is no {request.method} {path}; paths have no trailing slash: {path.rstrip('/')}"
        return _error(exc.status_code, detail)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # Nobody is left to answer: one quiet line, not a stack trace per abandoned upload.
        log.debug("%s %s: the client went away before its request was read", request.method, request.url.path)
        return Response(status_code=400)

    # Handlers for these classes run inside the app, so the connection stays usable; the
    # catch-all below runs outside it, where Starlette re-raises and uvicorn closes the
    # connection (hence its ``Connection: close``).
    async def storage_error(request: Request, exc: Exception) -> JSONResponse:
        failure = storage.error(exc, f"answer {request.method} {request.url.path}")
        if failure is None:
            return _internal(request, exc, close=False)
        return _error(failure.http_status, failure.message, StorageUnavailable.__name__)

    refused_writes: tuple[type[Exception], ...] = (OSError, *DATABASE_ERRORS)
    for refused in refused_writes:
        app.add_exception_handler(refused, storage_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request, exc, close=True)


def _internal(request: Request, exc: Exception, *, close: bool) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return _error(500, f"the server hit an internal error ({type(exc).__name__}); its log has the details", close=close)


def describe_validation(errors: Any) -> str:
    """FastAPI's list of validation errors as one sentence, naming the parameter."""
    parts = []
    for error in list(errors)[:3]:
        where = [str(p) for p in error.get("loc", ()) if p not in ("path", "query", "body", "header")]
        name = ".".join(where) or "the request"
        parts.append(f"{name}: {error.get('msg', 'is not valid')}")
    return "; ".join(parts) or "the request is not valid"


_JOB_FIELDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
        "number_of_videos": {"type": "integer", "minimum": 1, "maximum": MAX_VIDEOS, "default": 1},
        "model": {"type": "string", "enum": list(MODELS), "default": DEFAULT_MODEL},
        "aspect_ratio": {"type": "string", "enum": list(ASPECT_RATIOS), "default": DEFAULT_ASPECT_RATIO},
        "duration_seconds": {"type": "integer", "enum": list(DURATIONS), "default": DEFAULT_DURATION},
        "resolution": {"type": "string", "enum": list(RESOLUTIONS), "default": DEFAULT_RESOLUTION},
        "negative_prompt": {"type": ["string", "null"], "maxLength": MAX_PROMPT_CHARS},
        "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED},
        "user": {"type": "string", "description": "ignored with a per-user token: the token names the user"},
        "generate_audio": {"type": ["boolean", "null"], "description": "null: the model's default (sound)"},
        "person_generation": {"type": ["string", "null"], "enum": [*PERSON_GENERATION, None]},
        "enhance_prompt": {"type": ["boolean", "null"], "description": "null: the model's default"},
        "reference_type": {"type": ["string", "null"], "enum": [*REFERENCE_TYPES, None], "default": "asset"},
        "extends_job_id": {
            "type": ["string", "null"],
            "format": "uuid",
            "description": "continue a video of this completed job (409 if it is not completed)",
        },
        "extends_video": {"type": "integer", "minimum": 1, "default": 1, "description": "1-based"},
    },
}

GENERATE_BODY: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "the same key (per user, within 24 h) with the same request answers the job it made "
            "the first time (200, Idempotent-Replayed: true); with another request, 409",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[ -~]+$"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    **_JOB_FIELDS_SCHEMA,
                    "properties": {
                        **_JOB_FIELDS_SCHEMA["properties"],
                        "image_base64": {
                            "type": "string",
                            "description": "the input image, base64; at most 10 MB decoded",
                        },
                        "image_name": {"type": "string", "description": "the image's file name, for error messages"},
                        "last_frame_base64": {
                            "type": "string",
                            "description": "the last frame (needs the image), base64; at most 10 MB decoded",
                        },
                        "reference_images_base64": {
                            "type": "array",
                            "items": {"type": "string"},
                            "maxItems": MAX_REFERENCES,
                            "description": "reference images, base64; each at most 10 MB decoded",
                        },
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    **_JOB_FIELDS_SCHEMA,
                    "properties": {
                        **_JOB_FIELDS_SCHEMA["properties"],
                        "image": {
                            "type": "string",
                            "format": "binary",
                            "description": "the input image; at most 10 MB",
                        },
                        "last_frame": {
                            "type": "string",
                            "format": "binary",
                            "description": "the last frame (needs the image); at most 10 MB",
                        },
                        "reference_image": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": MAX_REFERENCES,
                            "description": "reference images (repeat the field); each at most 10 MB",
                        },
                    },
                }
            },
        },
    },
}

PAUSE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "reason": {"type": "string", "maxLength": 200, "description": "shown with the pause"}
                    },
                }
            }
        },
    }
}

MOVE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "exactly one of to and position",
                    "properties": {
                        "to": {"type": "string", "enum": ["top", "bottom", "up", "down"]},
                        "position": {"type": "integer", "minimum": 1, "description": "1-based; past the end: bottom"},
                    },
                }
            }
        },
    }
}
