"""The data directory: creating it (private to its owner: see ``privacy``), and saying in
one line why it cannot be used."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from veotui.core.errors import DataUnusable
from veotui.datadir.privacy import private_dir

CHOOSE_ANOTHER = "choose another data directory (--data-dir or VEOTUI_DATA_DIR)"


def prepare(data_dir: Path) -> None:
    """Create the data directory if needed; a path that cannot be one is a DataUnusable."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataUnusable(f"data directory {data_dir} is a file, not a directory; {CHOOSE_ANOTHER}")
    try:
        private_dir(data_dir)
    except OSError as exc:
        raise os_problem(data_dir, exc, "cannot be created") from None


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
