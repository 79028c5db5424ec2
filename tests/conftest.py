"""Fixtures shared by every test area (engine, server, tui, veo)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from gcp_storage_emulator.server import create_server
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from hypothesis import settings as hypothesis_settings

# CI must be repeatable: there, every property test runs the same examples each time.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

from tests.support.env import FAST_ENV
from tests.support.waiting import wait_for, wait_status
from veotui.backend.local import LocalBackend
from veotui.settings import Settings, load_settings

if TYPE_CHECKING:
    from tests.support.postgres import Cluster
    from veotui.store.jobs import JobStore


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
async def local_backend(settings: Settings) -> AsyncIterator[LocalBackend]:
    async with LocalBackend(settings, env={}) as backend:
        yield backend


# -- the store conformance suite: the same store tests on SQLite and on PostgreSQL ----------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
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
def open_store(store_location: str, tmp_path: Path) -> Iterator[Callable[[], JobStore]]:
    """Opens the store under test (again and again on the same data); closes them all."""
    from veotui.store import open_store as open_named

    opened: list[JobStore] = []

    def make() -> JobStore:
        store = open_named(store_location, tmp_path)
        opened.append(store)
        return store

    yield make
    for store in opened:
        with contextlib.suppress(Exception):
            store.close()


# Imported from here by tests written before tests/support held them.
__all__ = ["FAST_ENV", "wait_for", "wait_status"]


# -- Cloud Storage: gcp-storage-emulator on loopback ---------------------------------------

PROJECT = "test-proj"


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """The emulator's URL (for ``STORAGE_EMULATOR_HOST``); one per session, a bucket per test."""
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{server._api._httpd.server_address[1]}"
    finally:
        server.stop()  # its thread is not a daemon: without this the interpreter hangs at exit


@pytest.fixture(scope="session")
def storage_client(gcs_emulator: str) -> storage.Client:
    return storage.Client(
        project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator}
    )


@pytest.fixture
def bucket(storage_client: storage.Client) -> str:
    name = f"veotui-{uuid.uuid4().hex[:12]}"
    storage_client.create_bucket(name)
    return name
