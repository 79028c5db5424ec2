"""One suite, two backends: the engine in-process, and the same engine behind the real REST
server (uvicorn on a free loopback port) reached through ``RemoteBackend``."""

from __future__ import annotations

import pytest

from veotui.backend.local import LocalBackend
from veotui.backend.remote import RemoteBackend
from veotui.server import running_server


@pytest.fixture(params=["local", "remote"])
async def backend_for(request):
    """``backend_for(settings)``: an async context manager yielding the backend under test."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(settings):
        if request.param == "local":
            async with LocalBackend(settings, env={}) as backend:
                yield backend
        else:
            async with running_server(settings, keepalive=0.5) as server:
                async with RemoteBackend(server.url, settings.token) as backend:
                    yield backend

    return make


@pytest.fixture
async def backend(backend_for, settings):
    async with backend_for(settings) as backend:
        yield backend
