"""A sqlite3 connection that refuses every COMMIT while ``full`` is set, the way SQLite
answers when the disk is full (for engine and TUI tests without a small filesystem)."""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.support.by_hand import sqlite_connection
from veotui.store.jobs import JobStore


class RefusingConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.full = False
        self.refused = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.full and sql == "COMMIT":
            self.refused += 1
            raise sqlite3.OperationalError("database or disk is full")
        return self._connection.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:  # every other call goes to the real connection
        return getattr(self._connection, name)


def refuse_commits(store: JobStore) -> RefusingConnection:
    """Put a refusing connection under ``store``; returns it (set ``full`` to refuse)."""
    db = sqlite_connection(store)
    connection = RefusingConnection(db.raw)
    db.raw = connection  # type: ignore[assignment]  # it stands in for the connection
    return connection
