"""What a SQLite database file is, read before anything writes to it: veotui's (stamped with
its application id, or from before the stamp), another application's, or damaged (then
copied aside once). ``veotui``, ``veotui serve`` and ``veotui doctor`` call these before the
engine starts; the store calls them again whichever way it is opened."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from veotui.core.errors import DataUnusable
from veotui.datadir.paths import CHOOSE_ANOTHER, prepare

#: ``PRAGMA application_id`` of veotui's databases ("veot"), stamped when one is created.
APPLICATION_ID = 0x76656F74
#: A database from before the stamp is veotui's if it has these tables and a schema version.
OWN_TABLES = frozenset({"jobs", "events", "estimates"})
SQLITE_HEADER = b"SQLite format 3\x00"
#: What a damaged database is copied aside as (with the start of its content's hash).
BACKUP_SUFFIX = ".damaged-"
#: Databases up to this size are checked (``PRAGMA quick_check``) before start, which then
#: costs well under a second; larger ones start at once and are checked in the background.
CHECK_AT_OPEN_BYTES = 32 * 1024 * 1024


def preflight(data_dir: Path, db_path: Path) -> None:
    """Refuse a data directory or database that cannot be used, before anything starts."""
    prepare(data_dir)
    identify(db_path)


def identify(path: Path, *, backup: bool = True) -> None:
    """Refuse ``path`` unless it is missing, empty, or veotui's database; reads only (but
    for copying a damaged file aside, when ``backup``).

    The header is read as bytes first: a database stamped with veotui's application id is
    ours. An unstamped one is opened immutable (no lock, no journal, no -wal or -shm file)
    to list its tables."""
    if path.is_dir():
        raise DataUnusable(f"{path} is a directory, not a database; move it away or {CHOOSE_ANOTHER}")
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DataUnusable(f"{path} cannot be read ({exc.strerror or exc}); check its permissions") from None
    if not header:
        return  # an empty file is an empty database
    if len(header) < 100 or not header.startswith(SQLITE_HEADER):
        raise damaged(path, f"it is {path.stat().st_size} bytes and does not start with a SQLite header", backup)
    application_id = int.from_bytes(header[68:72], "big", signed=True)
    if application_id == APPLICATION_ID:
        return
    tables, version = _peek(path, backup)
    empty = not tables and version == 0
    from_before_the_stamp = tables >= OWN_TABLES and version >= 1
    if application_id == 0 and (empty or from_before_the_stamp):
        return
    listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    what = f"it has tables {listed}" if tables else "it has no tables"
    if application_id:
        what += f" and application id {application_id:#x}"
    raise DataUnusable(f"{path} is not a veotui database ({what}); veotui left it untouched; {CHOOSE_ANOTHER}")


def _peek(path: Path, backup: bool = True) -> tuple[set[str], int]:
    """Table names and user_version of a database file, read without touching it."""
    uri = "file:" + str(path.resolve()).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    try:
        conn = sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise sqlite_problem(path, exc, backup) from None
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error as exc:
        raise sqlite_problem(path, exc, backup) from None
    finally:
        conn.close()
    return {n for n in names if not n.startswith("sqlite_")}, version


def sqlite_problem(path: Path, exc: sqlite3.Error, backup: bool = True) -> DataUnusable:
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return damaged(path, str(exc), backup)
    if name.startswith("SQLITE_FULL"):
        return DataUnusable(f"{path} cannot be written: its disk is full; free some space and start again")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return DataUnusable(
            f"{path} cannot be opened for writing ({exc}); check that its directory is writable and "
            f"not on a read-only mount, or {CHOOSE_ANOTHER}"
        )
    return DataUnusable(f"{path} cannot be used ({exc}); {CHOOSE_ANOTHER}")


def database_bytes(path: Path) -> int:
    """The database's size with its write-ahead log (0 when it does not exist yet)."""
    total = 0
    for part in (path, path.with_name(path.name + "-wal")):
        with suppress(OSError):
            total += part.stat().st_size
    return total


def quick_check(conn: sqlite3.Connection) -> str | None:
    """What ``PRAGMA quick_check`` finds wrong, in one line, or None when all is well."""
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
    if problems == ["ok"]:
        return None
    return "quick_check: " + " ".join(" ".join(problems).split())


def damaged(path: Path, what: str, backup: bool = True) -> DataUnusable:
    """A damaged database: copy it aside (once per distinct content) and say where."""
    copied = _backup(path) if backup else "veotui left it untouched"
    return DataUnusable(
        f"{path} is damaged ({what}); {copied}; recover what it holds with "
        f"`sqlite3 {path} .recover`, or move it away to start with an empty one"
    )


def _backup(path: Path) -> str:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        target = path.with_name(path.name + BACKUP_SUFFIX + digest.hexdigest()[:12])
        if not target.exists():
            wal = path.with_name(path.name + "-wal")
            if wal.is_file():
                _copy(wal, target.with_name(target.name + "-wal"))
            _copy(path, target)
    except OSError as exc:
        return f"veotui left it untouched but could not copy it aside ({exc.strerror or exc})"
    return f"veotui left it untouched; a copy is at {target}"


def _copy(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    try:
        shutil.copyfile(source, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class DatabaseFacts:
    """What ``veotui doctor --data`` reports of a database veotui's identification accepted."""

    application_id: int
    schema_version: int
    #: ``PRAGMA integrity_check``'s lines: ``["ok"]`` when the file is sound.
    integrity: list[str]
    jobs: int


def inspect(path: Path) -> DatabaseFacts:
    """Read ``path``'s stamp, schema version, integrity and job count without writing;
    :class:`DataUnusable` when it cannot be read."""
    try:
        conn = read_connection(path)
        try:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            integrity = [row[0] for row in conn.execute("PRAGMA integrity_check(10)")]
            jobs = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] if version else 0
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DataUnusable(f"{path} cannot be read ({exc})") from None
    return DatabaseFacts(application_id, version, integrity, jobs)


def read_connection(path: Path) -> sqlite3.Connection:
    """A connection that only reads. A normal one first (a server may be writing meanwhile);
    where that cannot open (a read-only mount, and no -shm file), an immutable one: nothing
    can write there anyway."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        uri = "file:" + str(path.resolve()).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True)
