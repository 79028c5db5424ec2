"""One suite, two backends: the engine in-process, and the same engine behind the real REST
server (uvicorn on a free loopback port) reached through ``RemoteBackend``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from veotui.backend.base import Backend
from veotui.backend.local import LocalBackend
from veotui.backend.remote import RemoteBackend
from veotui.server import running_server
from veotui.settings import Settings

BackendFor = Callable[[Settings], AbstractAsyncContextManager[Backend]]


@pytest.fixture(params=["local", "remote"])
async def backend_for(request: pytest.FixtureRequest) -> BackendFor:
    """``backend_for(settings)``: an async context manager yielding the backend under test."""

    @asynccontextmanager
    async def make(settings: Settings) -> AsyncIterator[Backend]:
        if request.param == "local":
            async with LocalBackend(settings, env={}) as backend:
                yield backend
        else:
            async with running_server(settings, keepalive=0.5) as server:
                async with RemoteBackend(server.url, settings.token) as backend:
                    yield backend

    return make


@pytest.fixture
async def backend(backend_for: BackendFor, settings: Settings) -> AsyncIterator[Backend]:
    async with backend_for(settings) as backend:
        yield backend
