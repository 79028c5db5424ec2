"""What the three panels show, kept in step with the backend's change stream.

The board is plain Python (no widgets), so the rules that decide where a job belongs, its
queue position and the history page can be tested on their own. The screen renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from veotui.core.display import matches
from veotui.core.job import Change, Job, JobLists, Status

PROCESSING, QUEUE, HISTORY = "processing", "queue", "history"
PANELS = (PROCESSING, QUEUE, HISTORY)
HISTORY_PAGE = 100
#: Queued jobs the board holds (the head of the queue); the panel counts the rest.
QUEUE_WINDOW = 200
#: What a change asks the follower to read: everything, or the jobs after the queue window.
RELOAD, REFILL = "reload", "refill"


@dataclass
class Applied:
    """The outcome of one change: the job as it was shown before, and whether the lists
    must be read again (a row left the history page, or one arrived while a later page is
    shown), or only the queue window refilled (a row left it, and more jobs wait beyond)."""

    previous: Job | None
    needs_reload: bool = False
    needs_refill: bool = False


@dataclass
class Board:
    page_size: int = HISTORY_PAGE
    #: How many queued jobs the board holds: the head of the queue (the rest is counted).
    queue_limit: int = QUEUE_WINDOW
    processing: dict[str, Job] = field(default_factory=dict)
    #: The head of the queue in FIFO order (``queue_seq``); positions are kept exact as
    #: jobs come and go, from the changes alone.
    queued: dict[str, Job] = field(default_factory=dict)
    #: Queued jobs in all, as the queue panel counts them (those matching the filter).
    queued_total: int = 0
    history: list[Job] = field(default_factory=list)
    history_total: int = 0
    history_offset: int = 0
    filter_text: str = ""
    #: Every job holding a slot, filter or not, and the queue's length: the header's counts.
    active: dict[str, Status] = field(default_factory=dict)
    queue_length: int = 0
    #: Jobs counted as they joined the queue beyond the window since the last read.
    _beyond: set[str] = field(default_factory=set)

    # -- reading --------------------------------------------------------------------------

    def jobs(self, panel: str) -> list[Job]:
        if panel == PROCESSING:
            return list(self.processing.values())
        if panel == QUEUE:
            return list(self.queued.values())
        return list(self.history)

    def find(self, job_id: str) -> Job | None:
        return (
            self.processing.get(job_id)
            or self.queued.get(job_id)
            or next((job for job in self.history if job.job_id == job_id), None)
        )

    def panel_of(self, job_id: str) -> str | None:
        if job_id in self.processing:
            return PROCESSING
        if job_id in self.queued:
            return QUEUE
        if any(job.job_id == job_id for job in self.history):
            return HISTORY
        return None

    def is_live(self, job_id: str) -> bool:
        """Queued or processing, as far as the board knows."""
        return job_id in self.active or job_id in self.queued

    @property
    def processing_count(self) -> int:
        return len(self.active)

    @property
    def has_next_page(self) -> bool:
        return self.history_offset + len(self.history) < self.history_total

    # -- writing --------------------------------------------------------------------------

    def load(self, lists: JobLists, *, offset: int, unfiltered: JobLists | None = None) -> None:
        """Replace everything with a snapshot (``unfiltered`` feeds the header's counts
        when a filter narrowed ``lists``)."""
        self.processing = {job.job_id: job for job in lists.processing}
        self.queued = {job.job_id: job for job in lists.queued}
        self.queued_total = lists.queued_total
        self.history = list(lists.history)
        self.history_total = lists.history_total
        self.history_offset = offset
        every = unfiltered or lists
        self.active = {job.job_id: job.status for job in every.processing}
        self.queue_length = every.queued_total
        self._beyond.clear()
        if not self.filter_text:
            self._number_queue()

    def refill(self, lists: JobLists, *, after: str | None) -> bool:
        """Append the queued jobs read after ``after`` (the window's last job, or None for
        an empty window; ``lists.queued`` starts with it). False if the read does not join
        up with the window, as when the queue moved meanwhile: then read everything."""
        if self.filter_text:
            return False
        jobs = list(lists.queued)
        if after is not None:
            if not jobs or jobs[0].job_id != after or next(reversed(self.queued), None) != after:
                return False
            jobs = jobs[1:]
        elif self.queued:
            return False
        if any(job.job_id in self.queued or job.job_id in self.processing for job in jobs):
            return False
        for job in jobs[: max(0, self.queue_limit - len(self.queued))]:
            self.queued[job.job_id] = job
        self.queued_total = self.queue_length = lists.queued_total
        self._beyond.clear()
        self._number_queue()
        return True

    def apply(self, change: Change) -> Applied:
        if change.kind not in ("job", "deleted"):
            return Applied(None)
        previous = self.find(change.job_id)
        wanted = self._count(change, previous)
        applied = Applied(previous, needs_reload=wanted == RELOAD, needs_refill=wanted == REFILL)
        applied.needs_reload |= self._apply(change, previous).needs_reload
        job = change.job
        if previous is not None and job is not None and job.status == previous.status == Status.QUEUED:
            # A move may have spread the keys of jobs around it: read the window again.
            applied.needs_reload |= job.queue_seq != previous.queue_seq
        if not self.filter_text:
            self._number_queue()
        return applied

    def _count(self, change: Change, previous: Job | None) -> str | None:
        """Keep the header's and the queue's counts; RELOAD if they can only be known by
        reading the lists again (a job the board does not hold may have left the queue),
        REFILL if the window lost a row that a job beyond it should take."""
        job, job_id = change.job, change.job_id
        was_active = job_id in self.active
        if job is not None and job.status.is_active:
            self.active[job_id] = job.status
        else:
            self.active.pop(job_id, None)
        queued_now = job is not None and job.status == Status.QUEUED
        in_window = job_id in self.queued
        if queued_now and not in_window:
            assert job is not None
            # Joining the queue, or a queued job beyond the window that changed: a job
            # the board knew elsewhere, or any job while the window holds the whole queue,
            # joins it. A published position beyond the count also says so.
            holds_all = not self.filter_text and self.queued_total <= len(self.queued)
            if previous is not None or was_active or holds_all:
                self.queue_length += 1
                if not self.filter_text or matches(job, self.filter_text):
                    self.queued_total += 1
                self._beyond.add(job_id)
            position = job.queue_position or 0
            self.queue_length = max(self.queue_length, position)
            if not self.filter_text:
                self.queued_total = max(self.queued_total, position)
            return None
        if in_window and not queued_now:
            self.queue_length -= 1
            self.queued_total -= 1
            if self.queued_total <= len(self.queued) - 1:
                return None
            # The window lost a row that a job beyond it should take: read the jobs after
            # it (filtered, the window is a search's: read it all again).
            return RELOAD if self.filter_text else REFILL
        if not in_window and not queued_now and previous is None and not was_active:
            if job_id in self._beyond and not self.filter_text:
                # Counted when it joined beyond the window: it left the queue.
                self._beyond.discard(job_id)
                self.queue_length -= 1
                self.queued_total -= 1
                return None
            # Never seen queued (the stream coalesced its arrival away), or a queued job
            # beyond the window, or hidden by the filter: only a fresh read can tell.
            return RELOAD if self.queue_length > len(self.queued) or self.filter_text else None
        return None

    def _number_queue(self) -> None:
        """Unfiltered, the board holds the head of the queue in FIFO order, so a position
        is simply a place in it. This stays exact when the change stream coalesces: a job
        may reach us already started, never having been seen queued."""
        for place, (job_id, job) in enumerate(self.queued.items(), start=1):
            if job.queue_position != place:
                self.queued[job_id] = job.replace(queue_position=place)

    def _apply(self, change: Change, previous: Job | None) -> Applied:
        job = change.job
        visible = job is not None and (not self.filter_text or matches(job, self.filter_text))
        if job is not None and visible and previous is not None and self._update_in_place(job, previous):
            return Applied(previous)
        was_in_history = self._remove(change.job_id)
        if was_in_history and (job is None or not visible or not job.status.is_final):
            self.history_total -= 1
        if job is None or not visible:
            return Applied(previous, needs_reload=was_in_history)
        if job.status.is_active:
            self.processing[job.job_id] = job
        elif job.status == Status.QUEUED:
            self._enqueue(job)
        else:
            if previous is None and self._beyond_page(job):
                return Applied(previous)
            self.history_total += 1
            if self.history_offset > 0:
                return Applied(previous, needs_reload=True)
            self.history.insert(0, job)
            del self.history[self.page_size :]
        return Applied(previous)

    def _beyond_page(self, job: Job) -> bool:
        """An ended job that changed (e.g. its videos were downloaded) and ended before
        every row of a full page: its row lies on a later page."""
        if len(self.history) < self.page_size or job.finished_at is None:
            return False
        last = self.history[-1].finished_at
        return last is not None and job.finished_at < last

    def _enqueue(self, job: Job) -> None:
        if self.filter_text:
            # Filtered, the published position is the real one (others are hidden).
            position = job.queue_position or len(self.queued) + 1
            self.queued[job.job_id] = job.replace(queue_position=position)
            ordered = sorted(self.queued.values(), key=lambda j: j.queue_position or 0)
            self.queued = {j.job_id: j for j in ordered}
            return
        window = list(self.queued.values())
        place = len(window)
        while place > 0 and window[place - 1].queue_seq > job.queue_seq:
            place -= 1
        if place >= self.queue_limit:
            return  # it stands beyond the window
        window.insert(place, job)
        del window[self.queue_limit :]
        self.queued = {j.job_id: j for j in window}

    def _update_in_place(self, job: Job, previous: Job) -> bool:
        """A job that stays in its panel keeps its row and place."""
        if job.status.is_active and job.job_id in self.processing:
            self.processing[job.job_id] = job
            return True
        if job.status == Status.QUEUED and job.job_id in self.queued:
            if job.queue_seq != previous.queue_seq and not self.filter_text:
                return False  # it moved in the queue: take it out and put it in its place
            # The place we hold is exact; the one published with the change may be stale.
            self.queued[job.job_id] = job.replace(queue_position=previous.queue_position)
            return True
        if job.status.is_final and previous.status.is_final:
            for index, shown in enumerate(self.history):
                if shown.job_id == job.job_id:
                    self.history[index] = job
                    return True
        return False

    def refresh(self, job: Job) -> bool:
        """A fresher reading of a processing job (its progress); ignored if the job has
        moved on meanwhile, so an old answer never undoes a newer change."""
        current = self.processing.get(job.job_id)
        if current is None or current.status != job.status:
            return False
        self.processing[job.job_id] = job
        return True

    # -- internals ------------------------------------------------------------------------

    def _remove(self, job_id: str) -> bool:
        """Take the job off every panel; True if it was on the history page."""
        self.processing.pop(job_id, None)
        left = self.queued.pop(job_id, None)
        if left is not None and left.queue_position is not None and self.filter_text:
            for other_id, other in self.queued.items():
                if other.queue_position is not None and other.queue_position > left.queue_position:
                    self.queued[other_id] = other.replace(queue_position=other.queue_position - 1)
        for index, job in enumerate(self.history):
            if job.job_id == job_id:
                del self.history[index]
                return True
        return False
