from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from veotui.server import running_server
from veotui.server.running import Running
from veotui.settings import Settings


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Running]:
    """The real API under uvicorn on a free loopback port, in the test's event loop."""
    async with running_server(settings, keepalive=0.2) as running:
        yield running


@pytest.fixture
async def http(server: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=20, trust_env=False) as client:
        yield client


def form_fields(**fields: str) -> list[tuple[str, tuple[None, str]]]:
    """Text fields as multipart parts (httpx's ``files=``): a form without a file is
    multipart too, as ``curl -F`` sends it; the server takes no url-encoded form."""
    return [(name, (None, value)) for name, value in fields.items()]


def data_files(data_dir: Path) -> set[str]:
    """Every file a job could leave behind: job folders, images, videos, sim operations (not the log)."""
    ignored = {"veotui.db", "veotui.db-wal", "veotui.db-shm", "veotui.db-journal", "veotui.lock", "veotui.reserve"}
    files = {str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.name not in ignored}
    return {name for name in files if name != "logs" and not name.startswith("logs/")}
