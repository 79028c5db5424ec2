"""``veotui logs``: print the log, filtered, optionally following it.

With ``--remote`` or ``VEOTUI_REMOTE`` it is the server's log, read through ``GET /api/logs``
(the server's own token); otherwise the data directory's, read from its files (so it works
while another process owns the directory), saying on stderr which directory that is.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from veotui.core.errors import InvalidRequest, VeotuiError
from veotui.settings import Settings

if TYPE_CHECKING:
    from veotui.datadir.logfile import Record


def run_logs(
    settings: Settings,
    *,
    follow: bool = False,
    job: str | None = None,
    since: str | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """The data directory's log. A bad ``--job`` or ``--since`` raises InvalidRequest (exit 2)."""
    from veotui.datadir.logfile import FOLLOW_INTERVAL, LogTail, matcher, parse_duration, rotated_records
    from veotui.logs import log_path

    out = out or sys.stdout
    try:
        matches = matcher(job, parse_duration(since) if since else None)
    except InvalidRequest as exc:
        raise InvalidRequest(f"--{exc.message}") from None
    path = log_path(settings.data_dir)
    if not path.exists() and not any(path.parent.glob(path.name + ".*")) and not follow:
        raise VeotuiError(f"there is no log at {path} yet (veotui writes it while it runs)")
    print(f"veotui: the log of the data directory {settings.data_dir} ({path})", file=sys.stderr, flush=True)

    def emit(records: Iterable[Record]) -> None:
        for record in records:
            if matches(record):
                out.write(record.shown(as_json) + "\n")
        out.flush()

    emit(rotated_records(path))
    tail = LogTail(path)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                emit(tail.read())
                if not follow:
                    break
                time.sleep(FOLLOW_INTERVAL)
    finally:
        tail.close()
    return 0


async def remote_logs(
    settings: Settings,
    *,
    follow: bool = False,
    job: str | None = None,
    since: str | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """The server's log through ``GET /api/logs``, printed as it comes."""
    from veotui.backend.remote import RemoteBackend

    out = out or sys.stdout
    async with RemoteBackend(settings.remote, settings.token) as backend:
        said = False
        async for line in backend.log_lines(job=job, since=since, follow=follow, as_json=as_json):
            if not said:  # once the server answered: a refusal is the only line then
                print(f"veotui: the log of the server at {settings.remote}", file=sys.stderr, flush=True)
                said = True
            out.write(line)
            out.flush()
    return 0
