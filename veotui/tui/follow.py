"""Following the backend: which jobs the board holds, kept in step with the change stream.

One task decides what the board holds: it applies each change from ``backend.changes()`` the
moment it arrives and, between changes, re-reads the lists when a page, the filter or a row
leaving the history page asks for it. So a slow answer can never overwrite a newer change.

Plain Python (no widgets): the screen hands it callbacks, and tests can drive it with a
backend alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from veotui.backend.base import Backend, BackendInfo
from veotui.core.errors import VeotuiError
from veotui.core.job import CONNECTED, DISCONNECTED, FINAL_STATUSES, Change, QueueState, utcnow
from veotui.tui.board import Board

#: Seconds to wait before following again after the stream failed.
RECONNECT_SECONDS = 2.0
#: Seconds at least between two reads of the lists.
RELOAD_SECONDS = 0.1


def _ignore(*_: object) -> None:
    return None


class Follower:
    """Keeps ``board`` in step with ``backend``.

    ``on_change(change, was_live)`` is called after each change was applied to the board
    (``was_live``: the job was queued or processing before it, or ended unseen while followed),
    ``on_loaded()`` after each fresh read of the lists, ``on_error(title, message, severity)`` when a
    read or the stream failed (the follower goes on by itself), ``on_queue(state)`` when the
    queue is paused or resumed, ``on_connection(state)`` when a remote backend lost its
    server (DISCONNECTED) or found it again (CONNECTED)."""

    def __init__(
        self,
        backend: Backend,
        board: Board,
        *,
        on_change: Callable[[Change, bool], None] = _ignore,
        on_loaded: Callable[[], None] = _ignore,
        on_error: Callable[[str, str, str], None] = _ignore,
        on_connection: Callable[[str], None] = _ignore,
        on_queue: Callable[[QueueState], None] = _ignore,
        reconnect_seconds: float = RECONNECT_SECONDS,
        reload_seconds: float = RELOAD_SECONDS,
    ) -> None:
        self.backend = backend
        self.board = board
        self.on_change = on_change
        self.on_loaded = on_loaded
        self.on_error = on_error
        self.on_connection = on_connection
        self.on_queue = on_queue
        #: The queue's state as last heard (paused or not, and why).
        self.queue: QueueState | None = None
        self.reconnect_seconds = reconnect_seconds
        self.reload_seconds = reload_seconds
        self.info: BackendInfo | None = None
        #: The history page wanted at the next read.
        self.wanted_offset = 0
        self._reload_wanted = asyncio.Event()
        #: Set with ``_reload_wanted`` when only the queue window needs its tail read.
        self._refill_only = False
        #: Jobs that end after this moment are news, even if the board never saw them live.
        self._following_since = utcnow()

    def reload(self, *, offset: int | None = None) -> None:
        """Read the lists again as soon as the change in hand is applied (``offset``: the
        history page to read)."""
        if offset is not None:
            self.wanted_offset = offset
        self._refill_only = False
        self._reload_wanted.set()

    async def run(self) -> None:
        """Follow until the backend closes its stream, starting over whenever it fails."""
        while True:
            try:
                await self.follow_stream()
                return  # the backend closed its stream: the app is shutting down
            except Exception as exc:  # noqa: BLE001 - whatever broke the stream, say so and go on
                self.on_error("Lost the event stream", f"{exc}; reconnecting", "warning")
            await asyncio.sleep(self.reconnect_seconds)

    async def follow_stream(self) -> None:
        stream = self.backend.changes().__aiter__()
        pending: asyncio.Future[Change] = asyncio.ensure_future(stream.__anext__())
        # Let the subscription register before the first snapshot is read, so no change
        # committed in between is lost (one committed before is applied twice, harmlessly).
        await asyncio.sleep(0)
        if self.info is None:
            self.info = await self.backend.info()
        try:
            self.queue = await self.backend.queue()
        except VeotuiError as exc:
            self.on_error("Could not read the queue's state", str(exc), "warning")
        else:
            self.on_queue(self.queue)
        self.reload()
        clock = asyncio.get_running_loop().time
        last_read = -self.reload_seconds
        try:
            while True:
                if self._reload_wanted.is_set():
                    wait = last_read + self.reload_seconds - clock()
                    if wait <= 0:
                        self._reload_wanted.clear()
                        if not (self._refill_only and await self._refill()):
                            await self._read_lists()
                        self._refill_only = False
                        last_read = clock()
                        continue
                    # Reads come at most this often: a burst of changes that each ask for
                    # one is applied as it comes and then read once.
                    await asyncio.wait({pending}, timeout=wait)
                else:
                    wanted: asyncio.Future[Any] = asyncio.ensure_future(self._reload_wanted.wait())
                    await asyncio.wait({pending, wanted}, return_when=asyncio.FIRST_COMPLETED)
                    wanted.cancel()
                if pending.done():
                    try:
                        change = pending.result()
                    except StopAsyncIteration:
                        return
                    pending = asyncio.ensure_future(stream.__anext__())
                    self.apply(change)
        finally:
            pending.cancel()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError, VeotuiError):
                    await aclose()

    def apply(self, change: Change) -> None:
        if change.kind in (DISCONNECTED, CONNECTED):
            if change.kind == CONNECTED:
                self.reload()
            self.on_connection(change.kind)
            return
        if change.kind == "queue":
            self.queue = change.queue
            if change.queue is not None:
                self.on_queue(change.queue)
            return
        was_live = self.board.is_live(change.job_id) or self._ended_unseen(change)
        applied = self.board.apply(change)
        if applied.needs_reload:
            self.reload()
        elif applied.needs_refill and not self._reload_wanted.is_set():
            # Only the jobs after the queue window: a read that does not grow with the
            # history page or the window (a full read is wanted already otherwise).
            self._refill_only = True
            self._reload_wanted.set()
        self.on_change(change, was_live)

    def _ended_unseen(self, change: Change) -> bool:
        """A job that ended while this follower watched, though the board never showed it live:
        a slow subscriber gets only a job's latest change, so a job that fails at once may
        arrive already ended."""
        job = change.job
        return (
            job is not None
            and job.status in FINAL_STATUSES
            and job.finished_at is not None
            and job.finished_at >= self._following_since
            and self.board.find(job.job_id) is None
        )

    async def _refill(self) -> bool:
        """Read the jobs after the queue window into it; False if a full read is needed."""
        board = self.board
        missing = board.queue_limit - len(board.queued)
        if board.filter_text or missing <= 0:
            return missing <= 0 and not board.filter_text
        # One job of overlap (the window's last) shows whether the read joins up with it.
        after = next(reversed(board.queued), None)
        try:
            lists = await self.backend.list_jobs(
                history_limit=0,
                queue_limit=missing + (after is not None),
                queue_offset=max(0, len(board.queued) - 1),
            )
        except VeotuiError as exc:
            self.on_error("Could not read the jobs", str(exc), "error")
            return True
        if not board.refill(lists, after=after):
            return False
        self.on_loaded()
        return True

    async def _read_lists(self) -> None:
        board = self.board
        text = board.filter_text or None
        backend = self.backend
        try:
            lists = await backend.list_jobs(
                history_limit=board.page_size,
                history_offset=self.wanted_offset,
                text=text,
                queue_limit=board.queue_limit,
            )
            if self.wanted_offset and self.wanted_offset >= lists.history_total:
                # The page emptied (rows were deleted): show the last one that has rows.
                last = max(0, (lists.history_total - 1) // board.page_size * board.page_size)
                self.wanted_offset = last
                lists = await backend.list_jobs(
                    history_limit=board.page_size, history_offset=last, text=text, queue_limit=board.queue_limit
                )
            unfiltered = await backend.list_jobs(history_limit=0, queue_limit=0) if text else None
        except VeotuiError as exc:
            self.on_error("Could not read the jobs", str(exc), "error")
            return
        board.load(lists, offset=self.wanted_offset, unfiltered=unfiltered)
        self.on_loaded()
