"""The data directory: creating it (private to its owner), and saying in one line why it
cannot be used.

It holds every prompt and user name, so what veotui creates there is its owner's alone,
whatever the umask: directories 0700, files 0600 (the database, its WAL and SHM, the logs,
the lock; job files are written through ``mkstemp``, which makes them 0600)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from veotui.errors import DataUnusable

CHOOSE_ANOTHER = "choose another data directory (--data-dir or VEOTUI_DATA_DIR)"


def prepare(data_dir: Path) -> None:
    """Create the data directory if needed; a path that cannot be one is a DataUnusable."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataUnusable(f"data directory {data_dir} is a file, not a directory; {CHOOSE_ANOTHER}")
    try:
        private_dir(data_dir)
    except OSError as exc:
        raise os_problem(data_dir, exc, "cannot be created") from None


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> None:
    """``path`` made if missing, readable by its owner only (its parents as ``mkdir -p``
    makes them); one that exists is left as it is."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """``path`` created empty if missing, and made 0600 (if this user owns it: a file of
    another user is left as it is)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        with contextlib.suppress(PermissionError):
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def make_private(path: Path) -> None:
    """``path`` made 0600 if it exists and this user owns it."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        os.chmod(path, PRIVATE_FILE)


def open_to_others(path: Path) -> str | None:
    """The mode of ``path`` (like ``drwxr-xr-x``) when group or others may enter or read it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    return stat.filemode(mode) if mode & (stat.S_IRWXG | stat.S_IRWXO) else None


def os_problem(data_dir: Path, exc: OSError, doing: str) -> DataUnusable:
    """An OSError met while creating or writing in the data directory, as one sentence."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = _file_in_the_way(data_dir)
        what = f"{blocker} is a file" if blocker else "part of the path is a file"
        return DataUnusable(f"data directory {data_dir} {doing}: {what}; {CHOOSE_ANOTHER}")
    if exc.errno == errno.EROFS:
        return DataUnusable(
            f"data directory {data_dir} {doing}: it is on a read-only file system; "
            f"remount it read-write or {CHOOSE_ANOTHER}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return DataUnusable(
            f"data directory {data_dir} {doing}: permission denied for user {_user()}; "
            f"give that user write access or {CHOOSE_ANOTHER}"
        )
    if exc.errno == errno.ENOSPC:
        return DataUnusable(f"data directory {data_dir} {doing}: its disk is full; free some space and start again")
    return DataUnusable(f"data directory {data_dir} {doing}: {exc.strerror or exc}; {CHOOSE_ANOTHER}")


def _file_in_the_way(path: Path) -> Path | None:
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())
