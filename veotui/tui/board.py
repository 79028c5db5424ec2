"""What the three panels show, kept in step with the backend's change stream.

The board is plain Python (no widgets), so the rules that decide where a job belongs, its
queue position and the history page can be tested on their own. The screen renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from veotui.format import matches
from veotui.model import Change, Job, JobLists, Status

PROCESSING, QUEUE, HISTORY = "processing", "queue", "history"
PANELS = (PROCESSING, QUEUE, HISTORY)
HISTORY_PAGE = 100


@dataclass
class Applied:
    """The outcome of one change: the job as it was shown before, and whether the history
    page must be read again (a row left it, or one arrived while a later page is shown)."""

    previous: Job | None
    needs_reload: bool = False


@dataclass
class Board:
    page_size: int = HISTORY_PAGE
    processing: dict[str, Job] = field(default_factory=dict)
    #: FIFO order; each job's ``queue_position`` is kept exact as others leave.
    queued: dict[str, Job] = field(default_factory=dict)
    history: list[Job] = field(default_factory=list)
    history_total: int = 0
    history_offset: int = 0
    filter_text: str = ""
    #: Every job that is queued or processing, filter or not: the header's counts.
    live: dict[str, Status] = field(default_factory=dict)

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

    @property
    def processing_count(self) -> int:
        return sum(1 for status in self.live.values() if status.is_active)

    @property
    def queue_length(self) -> int:
        return sum(1 for status in self.live.values() if status == Status.QUEUED)

    @property
    def has_next_page(self) -> bool:
        return self.history_offset + len(self.history) < self.history_total

    # -- writing --------------------------------------------------------------------------

    def load(self, lists: JobLists, *, offset: int, unfiltered: JobLists | None = None) -> None:
        """Replace everything with a snapshot (``unfiltered`` feeds the header's counts
        when a filter narrowed ``lists``)."""
        self.processing = {job.job_id: job for job in lists.processing}
        self.queued = {job.job_id: job for job in lists.queued}
        self.history = list(lists.history)
        self.history_total = lists.history_total
        self.history_offset = offset
        every = unfiltered or lists
        self.live = {job.job_id: job.status for job in (*every.processing, *every.queued)}
        if not self.filter_text:
            self._number_queue()

    def apply(self, change: Change) -> Applied:
        previous = self.find(change.job_id)
        job = change.job
        # A job hidden by the filter that leaves the queue moves the visible ones up by a
        # place we cannot work out here: read the queue again.
        hidden_left_queue = (
            self.live.get(change.job_id) == Status.QUEUED
            and change.job_id not in self.queued
            and (job is None or job.status != Status.QUEUED)
        )
        applied = self._apply(change, previous)
        applied.needs_reload |= hidden_left_queue
        if not self.filter_text:
            self._number_queue()
        return applied

    def _number_queue(self) -> None:
        """Unfiltered, the panel holds the whole queue in FIFO order (a job always joins at
        the back), so a position is simply a place in it. This stays exact when the change
        stream coalesces: a job may reach us already started, never having been seen queued."""
        for place, (job_id, job) in enumerate(self.queued.items(), start=1):
            if job.queue_position != place:
                self.queued[job_id] = job.replace(queue_position=place)

    def _apply(self, change: Change, previous: Job | None) -> Applied:
        job = change.job
        if job is None or job.status.is_final:
            self.live.pop(change.job_id, None)
        else:
            self.live[job.job_id] = job.status
        visible = job is not None and (not self.filter_text or matches(job, self.filter_text))
        if job is not None and visible and previous is not None and self._update_in_place(job, previous):
            return Applied(previous)
        was_in_history = self._remove(change.job_id)
        if job is None or not visible:
            if was_in_history:
                self.history_total -= 1
            return Applied(previous, needs_reload=was_in_history)
        if job.status.is_active:
            self.processing[job.job_id] = job
        elif job.status == Status.QUEUED:
            # Filtered, the published position is the real one (others are hidden).
            position = job.queue_position or len(self.queued) + 1
            self.queued[job.job_id] = job.replace(queue_position=position)
            if self.filter_text:
                ordered = sorted(self.queued.values(), key=lambda j: j.queue_position or 0)
                self.queued = {j.job_id: j for j in ordered}
        else:
            self.history_total += 1
            if self.history_offset > 0:
                return Applied(previous, needs_reload=True)
            self.history.insert(0, job)
            del self.history[self.page_size :]
        return Applied(previous)

    def _update_in_place(self, job: Job, previous: Job) -> bool:
        """A job that stays in its panel keeps its row and place."""
        if job.status.is_active and job.job_id in self.processing:
            self.processing[job.job_id] = job
            return True
        if job.status == Status.QUEUED and job.job_id in self.queued:
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
        if left is not None and left.queue_position is not None:
            for other_id, other in self.queued.items():
                if other.queue_position is not None and other.queue_position > left.queue_position:
                    self.queued[other_id] = other.replace(queue_position=other.queue_position - 1)
        for index, job in enumerate(self.history):
            if job.job_id == job_id:
                del self.history[index]
                return True
        return False
