"""``GET /api/logs``: the server's log, as ``veotui logs`` prints it, for the server's own
token only (it names every user, prompt and error).

It reads the data directory's log files, filtered like the verb (``job``, ``since``), as
text or one JSON object a line; with ``follow`` it keeps sending records as they are
written until the client leaves or the server stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
from starlette.responses import StreamingResponse

from veotui.datadir.logfile import FOLLOW_INTERVAL, LogTail, Record, log_files, matcher, parse_duration, records
from veotui.logs import log_path


class LogStreams:
    """Answers ``GET /api/logs``; shutting down ends the streams that follow the log."""

    def __init__(self, data_dir: Path) -> None:
        self.path = log_path(data_dir)
        self.stopping = False

    def open(self, *, job: str | None, since: str | None, follow: bool, as_json: bool) -> StreamingResponse:
        """The response; a bad ``job`` or ``since`` raises InvalidRequest before it starts."""
        matches = matcher(job, parse_duration(since) if since else None)
        return StreamingResponse(
            self._stream(matches, follow, as_json),
            media_type="text/plain; charset=utf-8",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    def close_all(self) -> None:
        self.stopping = True

    async def _stream(self, matches: Callable[[Record], bool], follow: bool, as_json: bool) -> AsyncIterator[bytes]:
        def shown(found: list[Record]) -> bytes:
            return "".join(record.shown(as_json) + "\n" for record in found if matches(record)).encode()

        def rotated(file: Path) -> bytes:
            with open(file, encoding="utf-8", errors="replace") as handle:
                return shown(list(records(handle)))

        # The rotated files, a file at a time (each at most the rotation size), then the current one.
        for file in log_files(self.path):
            if file == self.path:
                break
            data = await anyio.to_thread.run_sync(rotated, file)
            if data:
                yield data
        tail = LogTail(self.path)
        try:
            while True:
                chunk = await anyio.to_thread.run_sync(lambda: shown(tail.read()))
                if chunk:
                    yield chunk
                if not follow or self.stopping:
                    return
                await anyio.sleep(FOLLOW_INTERVAL)
        finally:
            tail.close()
