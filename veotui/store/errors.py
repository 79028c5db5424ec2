"""The database drivers' errors, read for the rest of veotui, which imports no driver."""

from __future__ import annotations

import sqlite3

from veotui.datadir.health import FULL, REFUSED

#: What a database driver raises that may reach a request handler (the server answers a
#: refused write with 507, anything else with 500).
DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)

_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 8, 10, 13, 14


def write_refusal(exc: BaseException) -> str | None:
    """A SQLite error as a refused write (FULL, or REFUSED when SQLite does not say why), or
    None when it is something else."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_FULL or "disk is full" in str(exc):
        return FULL
    if primary in (_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN) or "readonly" in str(exc):
        return REFUSED
    return None
