"""The FastAPI application: its middlewares and error handlers, and the routes of
``veotui.server.routes``, one module per resource: the seven endpoints of the original web
service's API over the engine, plus the job lists, queue control, events, metrics, models,
health, and the lookups the remote backend needs (info, timeline, resolve).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, ProcessCollector
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veotui import __version__
from veotui.backend.local import LocalBackend
from veotui.core.errors import ERROR_HEADER, Forbidden, StorageUnavailable, TooLarge, VeotuiError
from veotui.datadir.health import StorageGuard
from veotui.logs import event
from veotui.server.auth import BearerAuth
from veotui.server.logs import LogStreams
from veotui.server.prometheus import Collector
from veotui.server.routes import (
    audit,
    downloads,
    events,
    groups,
    health,
    info,
    jobs,
    logs,
    me,
    metrics,
    models,
    pictures,
    queue,
    webhooks,
)
from veotui.server.security import CrossSiteGuard, HostGuard
from veotui.server.streams import EventStreams
from veotui.server.users import Users
from veotui.settings import Settings
from veotui.store.errors import DATABASE_ERRORS

log = logging.getLogger(__name__)

#: An error's sentence is cut beyond this many characters.
MAX_DETAIL_CHARS = 1000


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

    router = app.router
    jobs.add_routes(router, backend)
    webhooks.add_routes(router, backend)
    downloads.add_routes(router, backend)
    groups.add_routes(router, backend)
    queue.add_routes(router, backend)
    me.add_routes(router, backend)
    audit.add_routes(router, backend)
    pictures.add_routes(router, backend)
    events.add_routes(router, streams)
    metrics.add_routes(router, backend, registry)
    models.add_routes(router, backend)
    logs.add_routes(router, backend, log_streams)
    info.add_routes(router, backend)
    health.add_routes(router, backend)
    return app


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
