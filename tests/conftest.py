"""Fixtures shared by every test area (engine, server, tui, veo)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import settings as hypothesis_settings

# CI must be repeatable: there, every property test runs the same examples each time.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

from veotui.backend.local import LocalBackend
from veotui.settings import Settings, load_settings

#: Fast defaults for tests: a 0.3 s simulated generation polled every 0.05 s.
FAST_ENV = {
    "VEOTUI_SIM_SECONDS": "0.3",
    "VEOTUI_POLL_INTERVAL": "0.05",
    "VEOTUI_RETRY_BASE_SECONDS": "0.01",
    "VEOTUI_GENERATOR": "sim",
    "VEOTUI_CONFIG": "/nonexistent/veotui-test-config.toml",
}


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on a fresh data directory; keyword arguments override VEOTUI_* values."""

    def make(**env: Any) -> Settings:
        values = {**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "data")}
        values.update({f"VEOTUI_{k.upper()}": str(v) for k, v in env.items()})
        settings = load_settings(env=values)
        return settings.replace(downloads_dir=tmp_path / "downloads")

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def local_backend(settings: Settings):
    async with LocalBackend(settings, env={}) as backend:
        yield backend


async def wait_for(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 15.0,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` (sync or async) until true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if hasattr(result, "__await__"):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await anyio.sleep(interval)


# -- the store conformance suite: the same store tests on SQLite and on PostgreSQL ----------


@pytest.fixture(scope="session")
def postgres_cluster():
    """A private PostgreSQL cluster for the whole test session (skipped where none can start)."""
    try:
        from tests.support.postgres import start_cluster

        cluster = start_cluster()
    except ImportError as exc:
        pytest.skip(f"the PostgreSQL driver is not installed ({exc}); pip install 'veotui[postgres]'")
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        pytest.skip(f"PostgreSQL cannot be started here: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest) -> str:
    """``sqlite``, or the URL of a fresh PostgreSQL database: a ``VEOTUI_STORE`` value."""
    if request.param == "sqlite":
        return "sqlite"
    return request.getfixturevalue("postgres_cluster").new_database()


@pytest.fixture
def open_store(store_location: str, tmp_path: Path):
    """Opens the store under test (again and again on the same data); closes them all."""
    from veotui.store import open_store as open_named

    opened: list[Any] = []

    def make() -> Any:
        store = open_named(store_location, tmp_path)
        opened.append(store)
        return store

    yield make
    for store in opened:
        with contextlib.suppress(Exception):
            store.close()
