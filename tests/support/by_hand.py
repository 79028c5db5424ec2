"""Rows written or read by hand in a store's database, for tests that need a state no
public call makes (an aged row, a schema from a newer veotui)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from veotui.store.jobs import JobStore
from veotui.store.sqlite import SqliteConnection


class _Statements:
    """``execute(sql, params)`` with ``?`` placeholders, on either driver's connection."""

    def __init__(self, raw: Any, postgres: bool) -> None:
        self.raw = raw
        self.postgres = postgres

    def execute(self, sql: str, params: Any = ()) -> Any:
        if self.postgres:
            sql = sql.replace("?", "%s")
        return self.raw.execute(sql, params or None) if self.postgres else self.raw.execute(sql, params)


@contextmanager
def by_hand(store: Any) -> Iterator[_Statements]:
    """One transaction on the store's own connection, committed at the end."""
    raw = store.db.raw
    postgres = store.fleet
    if postgres:
        with raw.transaction():
            yield _Statements(raw, postgres)
        return
    raw.execute("BEGIN IMMEDIATE")
    try:
        yield _Statements(raw, postgres)
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")


def sqlite_connection(store: JobStore) -> SqliteConnection:
    """The SQLite connection under ``store``, for a test that runs on SQLite only."""
    assert isinstance(store.db, SqliteConnection), f"{store!r} is not on SQLite"
    return store.db
