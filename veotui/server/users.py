"""The server's users, kept in step with the config file while the server runs.

``veotui users add|rotate|remove`` edits the file; the server reads it again when its size,
time or inode changed (looked at every :data:`CHECK_SECONDS`), or at once on SIGHUP. A user
removed from it gets 401 on their next request; a changed budget or limit holds from the next
dispatch. A file that cannot be read is logged and the users stay as they were.
"""

from __future__ import annotations

import logging
import os

from veotui.backend.local import LocalBackend
from veotui.core.errors import SettingsError
from veotui.logs import event
from veotui.server.auth import TokenTable
from veotui.settings import Settings, read_users

log = logging.getLogger(__name__)

#: How often the config file is looked at; a change applies within this.
CHECK_SECONDS = 2.0


class Users:
    def __init__(self, backend: LocalBackend, settings: Settings) -> None:
        self._backend = backend
        self._admin_token = settings.token
        self._path = settings.config_file
        # A server started with tokens never falls back to open: removing every user leaves
        # the server's own token, or nobody.
        self._required = bool(settings.token or settings.users)
        self._seen = self._stamp()
        self.tokens = TokenTable(settings.token, settings.users, required=self._required)

    def _stamp(self) -> tuple[int, int, int] | None:
        if self._path is None:
            return None
        try:
            stat = os.stat(self._path)
        except OSError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def check(self, *, force: bool = False) -> bool:
        """Read the config file again if it changed (or ``force``); whether the users changed."""
        if self._path is None:
            return False
        stamp = self._stamp()
        if stamp == self._seen and not force:
            return False
        self._seen = stamp
        try:
            users = read_users(self._path)
        except SettingsError as exc:
            event(log, logging.WARNING, "users.unreadable", "the users stay as they were: %s", exc)
            return False
        if users == dict(self._backend.users):
            return False
        before = set(self._backend.users)
        self.tokens = TokenTable(self._admin_token, users, required=self._required)
        self._backend.set_users(users)
        event(
            log,
            logging.INFO,
            "users.reloaded",
            "the config file's users changed: %d user(s)",
            len(users),
            added=sorted(set(users) - before),
            removed=sorted(before - set(users)),
        )
        return True
