"""Persistence: the job store on SQLite (the default) or PostgreSQL (a fleet), its schema,
its aggregates, and what a database file is. The only package that imports a database driver;
importing it does not import the PostgreSQL driver."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from veotui.core.errors import DataUnusable

if TYPE_CHECKING:
    from veotui.datadir.health import StorageGuard
    from veotui.store.jobs import JobStore


def open_store(store: str, data_dir: Path, guard: StorageGuard | None = None) -> JobStore:
    """The store ``VEOTUI_STORE`` names: ``sqlite`` (``<data>/veotui.db``) or a PostgreSQL URL.
    The PostgreSQL driver is imported only then (``pip install 'veotui[postgres]'``)."""
    if not is_postgres(store):
        from veotui.store.sqlite import SqliteStore

        return SqliteStore(data_dir / "veotui.db", guard)
    try:
        from veotui.store.postgres import PostgresStore
    except ImportError:
        raise DataUnusable(
            "VEOTUI_STORE names PostgreSQL but its driver is not installed; pip install 'veotui[postgres]'"
        ) from None
    return PostgresStore(store, data_dir, guard)


def is_postgres(store: str) -> bool:
    return store.startswith(("postgresql://", "postgres://"))
