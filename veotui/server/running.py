"""Running the API under uvicorn on a socket bound beforehand.

Binding first gives the real URL (``--port 0`` picks a free port) before the engine starts,
so the data-directory lock records where this server can be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from veotui.backend.local import LocalBackend
from veotui.core.errors import VeotuiError
from veotui.server.app import create_app
from veotui.server.limits import ConnectionLimits, guarded_protocol
from veotui.server.users import CHECK_SECONDS, Users
from veotui.settings import Settings

log = logging.getLogger(__name__)

#: Seconds uvicorn waits for open requests (downloads) before it cuts them at shutdown.
GRACEFUL_SECONDS = 3


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio disables Nagle only on sockets that say they are
    # TCP, and with Nagle on, every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise VeotuiError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server minus its signal handling: whoever runs it decides what a signal
    means (``veotui serve`` also ends the event streams first, so shutdown never hangs)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Running:
    url: str
    app: FastAPI
    backend: LocalBackend


def uvicorn_config(app: ASGIApp, limits: ConnectionLimits | None = None) -> uvicorn.Config:
    """How veotui runs uvicorn (the benchmark's bare control uses the same)."""
    return uvicorn.Config(
        app,
        log_config=None,  # leave the process's logging as the caller set it up
        log_level="warning",
        access_log=False,
        lifespan="off",  # the engine starts before uvicorn, so a refusal never reaches it
        http=guarded_protocol(limits or ConnectionLimits()),
        loop="asyncio",
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )


@asynccontextmanager
async def running_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    keepalive: float = 15.0,
) -> AsyncIterator[Running]:
    """Bind, start the engine, serve; on exit stop serving, then stop the engine (processing
    jobs stay resumable). Raises :class:`DataDirBusy` if another process owns the data."""
    sock = bind(host, port)
    try:
        url = url_of(sock)
        backend = LocalBackend(settings, url=url)
        await backend.start()
    except BaseException:
        sock.close()
        raise
    try:
        app = create_app(backend, settings, keepalive=keepalive)
        limits = ConnectionLimits(settings.header_timeout, settings.body_timeout, settings.max_connections)
        server = _Server(uvicorn_config(app, limits))
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:  # uvicorn offers no startup callback
            if task.done():
                task.result()
                raise VeotuiError(f"the server on {url} stopped while starting")
            await asyncio.sleep(0.005)
        users_task = asyncio.get_running_loop().create_task(_follow_users(app.state.users))
        try:
            yield Running(url=url, app=app, backend=backend)
        finally:
            users_task.cancel()
            app.state.streams.close_all()
            app.state.log_streams.close_all()
            server.should_exit = True
            await task
    finally:
        sock.close()
        await backend.close()


async def _follow_users(users: Users) -> None:
    """Apply the config file's users as they change (``veotui users`` edits it)."""
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        try:
            users.check()
        except Exception:  # a bug here must not stop the server applying later changes
            log.exception("reading the config file's users failed")
