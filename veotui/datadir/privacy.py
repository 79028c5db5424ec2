"""What veotui keeps is its owner's alone, whatever the umask.

The data directory holds every prompt and user name, and the config file the tokens: what
veotui creates in the data directory is made directories 0700 and files 0600 (the database,
its WAL and SHM, the logs, the lock; job files are written through ``mkstemp``, which makes
them 0600), and a file holding tokens that others can read is pointed out."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from veotui.settings import Settings

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


def exposed_secrets(settings: Settings) -> list[str]:
    """A warning for each file holding tokens that other users of this machine can read."""
    files = []
    if settings.config_file is not None and settings.config_holds_tokens:
        files.append(("config file", settings.config_file))
    if settings.token_file is not None:
        files.append(("token file", settings.token_file))
    warnings = []
    for what, path in files:
        mode = open_to_others(path)
        if mode is not None:
            warnings.append(
                f"the {what} {path} holds tokens and other users of this machine can read it "
                f"({mode}); make it private: chmod 600 {path}"
            )
    return warnings
