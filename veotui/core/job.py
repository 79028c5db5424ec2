"""The job: its fields, its nine statuses and the transitions allowed between them, and
what crosses the backend interface about jobs (events, the panels' lists, the queue's state,
changes)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from veotui.core.request import JobRequest


class Status(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    UPLOADING_IMAGE = "uploading_image"
    GENERATING = "generating"
    PROCESSING = "processing"
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


#: The stages a job passes through while it holds a processing slot, in order.
ACTIVE_STATUSES: tuple[Status, ...] = (
    Status.STARTING,
    Status.UPLOADING_IMAGE,
    Status.GENERATING,
    Status.PROCESSING,
    Status.DOWNLOADING,
)
FINAL_STATUSES: frozenset[Status] = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

#: Every allowed move. A processing job may fall back to ``queued`` only during restart
#: recovery, when there are more resumable jobs than slots.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.STARTING, Status.CANCELLED}),
    Status.STARTING: frozenset({Status.UPLOADING_IMAGE, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.UPLOADING_IMAGE: frozenset({Status.GENERATING, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.GENERATING: frozenset({Status.PROCESSING, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.PROCESSING: frozenset({Status.DOWNLOADING, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.DOWNLOADING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.CANCELLED: frozenset({Status.QUEUED}),
}


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


def stage_index(status: Status) -> int:
    """Position of a processing stage, so the runner never moves a resumed job backwards."""
    return ACTIVE_STATUSES.index(status) if status in ACTIVE_STATUSES else -1


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Video:
    index: int
    filename: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "filename": self.filename, "size_bytes": self.size_bytes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Video:
        """Reads :meth:`to_dict`'s shape; other keys (the API's ``url``) are ignored."""
        return cls(index=data["index"], filename=data["filename"], size_bytes=data["size_bytes"])

    def url(self, job_id: str) -> str:
        return f"/api/download/{job_id}/video/{self.index}"


RETRY_REFETCHES = "fetches the videos of the finished generation again — no new charge"
RETRY_RESUBMITS = "submits again — Google charges again"


def format_usd(amount: float | None) -> str:
    """An estimate as people read it: ``$3.20``; ``-`` when there is none."""
    return "-" if amount is None else f"${amount:,.2f}"


@dataclass(frozen=True)
class Job:
    """A job as stored. ``progress`` and ``queue_position`` are derived when it is read."""

    job_id: str
    status: Status
    request: JobRequest
    has_image: bool = False
    has_last_frame: bool = False
    reference_count: int = 0
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stage_started_at: datetime | None = None
    attempts: int = 0
    error: str | None = None
    error_kind: str | None = None
    operation: str | None = None
    submitting: bool = False
    videos: tuple[Video, ...] = ()
    downloaded_at: datetime | None = None
    #: The queue's sort key: new jobs take the next whole number; a move puts the job
    #: between two neighbours, possibly on a fraction (see JobStore.move).
    queue_seq: float = 0
    #: Order of the final transitions (History's order); None until the job ends.
    finished_seq: int | None = None
    progress: int = 0
    queue_position: int | None = None
    eta_seconds: int | None = None
    #: While the job waits out a backoff: when it tries again, and why it waits
    #: ("rate limited", "temporary fault"). Derived by the engine, never stored.
    retry_at: datetime | None = None
    retry_reason: str | None = None
    #: The job this queued job waits for until it completes (its ``after``, or the unfinished
    #: job it extends); None once released. Waiting jobs never take a slot.
    waiting_for: str | None = None
    #: Why a queued job that could start does not (the job it waits for, the queue is paused,
    #: its user's budget or limit), a sentence. Derived by the engine, never stored.
    waiting_reason: str | None = None
    #: US dollars, from the price table when the job was submitted.
    estimated_cost_usd: float | None = None
    #: The operation finished with videos: a retry fetches them again instead of paying anew.
    operation_done: bool = False
    #: What the generator needs to fetch a finished operation's videos again (JSON-able).
    result: Any = None

    def replace(self, **changes: Any) -> Job:
        # On the engine's hot path (every transition and every view): a shallow copy is
        # ~20x cheaper than dataclasses.replace, which re-runs __init__ over every field.
        unknown = changes.keys() - _JOB_FIELDS
        if unknown:
            raise TypeError(f"Job has no field {sorted(unknown)[0]!r}")
        copy = object.__new__(Job)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        return copy

    @property
    def prompt(self) -> str:
        return self.request.prompt

    @property
    def retry_effect(self) -> str:
        """What a retry of this job does, in words every face shows."""
        return RETRY_REFETCHES if self.retry_reuses_operation else RETRY_RESUBMITS

    @property
    def retry_reuses_operation(self) -> bool:
        """A retry fetches the finished operation's videos again: no new submit, no new charge."""
        return self.operation is not None and self.operation_done

    def to_dict(self) -> dict[str, Any]:
        """The job as the API's JSON object (docs/api.md)."""
        data: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status.value,
            "progress": self.progress,
            "queue_position": self.queue_position,
            "queue_seq": self.queue_seq,
        }
        data.update(self.request.to_dict())
        data.update(
            {
                "has_image": self.has_image,
                "has_last_frame": self.has_last_frame,
                "reference_count": self.reference_count,
                "created_at": isoformat(self.created_at),
                "started_at": isoformat(self.started_at),
                "finished_at": isoformat(self.finished_at),
                "attempts": self.attempts,
                "error": self.error,
                "error_kind": self.error_kind,
                "operation": self.operation,
                "videos": [{**video.to_dict(), "url": video.url(self.job_id)} for video in self.videos],
                "stage_started_at": isoformat(self.stage_started_at),
                "eta_seconds": self.eta_seconds,
                "retry_at": isoformat(self.retry_at),
                "retry_reason": self.retry_reason,
                "waiting_for": self.waiting_for,
                "waiting_reason": self.waiting_reason or waits_for(self.waiting_for),
                "downloaded_at": isoformat(self.downloaded_at),
                "estimated_cost_usd": self.estimated_cost_usd,
                "retry_reuses_operation": self.retry_reuses_operation,
            }
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """Rebuild a job from its JSON object (the remote backend reads these)."""
        request = JobRequest.from_dict(data)
        return cls(
            job_id=data["job_id"],
            status=Status(data["status"]),
            request=request,
            has_image=bool(data.get("has_image")),
            has_last_frame=bool(data.get("has_last_frame")),
            reference_count=int(data.get("reference_count") or 0),
            created_at=parse_time(data.get("created_at")) or utcnow(),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            stage_started_at=parse_time(data.get("stage_started_at")),
            attempts=int(data.get("attempts") or 0),
            error=data.get("error"),
            error_kind=data.get("error_kind"),
            operation=data.get("operation"),
            videos=tuple(Video.from_dict(v) for v in data.get("videos") or ()),
            downloaded_at=parse_time(data.get("downloaded_at")),
            progress=int(data.get("progress") or 0),
            queue_position=data.get("queue_position"),
            queue_seq=data.get("queue_seq") or 0,
            eta_seconds=data.get("eta_seconds"),
            retry_at=parse_time(data.get("retry_at")),
            retry_reason=data.get("retry_reason"),
            waiting_for=data.get("waiting_for"),
            waiting_reason=data.get("waiting_reason"),
            estimated_cost_usd=data.get("estimated_cost_usd"),
            operation_done=bool(data.get("retry_reuses_operation")),
        )


_JOB_FIELDS = frozenset(f.name for f in dataclasses.fields(Job))


def waits_for(job_id: str | None) -> str | None:
    """The waiting reason of a job held back by the job ``job_id`` (None: held by none)."""
    return None if job_id is None else f"waits for job {job_id} to complete"


@dataclass(frozen=True)
class JobEvent:
    """One line of a job's timeline: a transition, or a note such as a retry."""

    job_id: str
    at: datetime
    status: Status
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "at": isoformat(self.at),
            "status": self.status.value,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobEvent:
        return cls(
            job_id=data["job_id"],
            at=parse_time(data["at"]) or utcnow(),
            status=Status(data["status"]),
            detail=data.get("detail"),
        )


@dataclass(frozen=True)
class JobLists:
    """The three panels: processing, queued in FIFO order (one page), history newest first
    (one page). ``queued_total`` counts every queued job (None: the page holds them all)."""

    processing: list[Job]
    queued: list[Job]
    history: list[Job]
    history_total: int = 0
    queued_total: int = None  # type: ignore[assignment]  # None: the page's length, set by __post_init__

    def __post_init__(self) -> None:
        if self.queued_total is None:
            object.__setattr__(self, "queued_total", len(self.queued))

    def to_dict(self) -> dict[str, Any]:
        return {
            "processing": [job.to_dict() for job in self.processing],
            "queued": [job.to_dict() for job in self.queued],
            "history": [job.to_dict() for job in self.history],
            "history_total": self.history_total,
            "queued_total": self.queued_total,
        }

    @classmethod
    def split(
        cls,
        jobs: Iterable[Job],
        *,
        queue_limit: int,
        queue_offset: int = 0,
        history_limit: int,
        history_offset: int = 0,
    ) -> JobLists:
        """Jobs found by a search or a group, sorted into the three panels and paged."""
        jobs = list(jobs)
        queued = sorted((j for j in jobs if j.status == Status.QUEUED), key=lambda j: j.queue_seq)
        history = sorted((j for j in jobs if j.status.is_final), key=lambda j: j.finished_seq or 0, reverse=True)
        return cls(
            processing=[j for j in jobs if j.status.is_active],
            queued=queued[queue_offset : queue_offset + queue_limit],
            history=history[history_offset : history_offset + history_limit],
            history_total=len(history),
            queued_total=len(queued),
        )

    @property
    def every_job(self) -> list[Job]:
        """Every job listed, in the order they were queued."""
        return sorted([*self.processing, *self.queued, *self.history], key=lambda j: j.queue_seq)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobLists:
        queued = [Job.from_dict(item) for item in data.get("queued", [])]
        total = data.get("queued_total")
        return cls(
            processing=[Job.from_dict(item) for item in data.get("processing", [])],
            queued=queued,
            history=[Job.from_dict(item) for item in data.get("history", [])],
            history_total=int(data.get("history_total", 0)),
            queued_total=len(queued) if total is None else int(total),
        )


#: Kinds of change a remote backend adds: its stream was lost (it keeps retrying), and it
#: is back (what changed meanwhile came before this, as ordinary changes).
DISCONNECTED, CONNECTED = "disconnected", "connected"


@dataclass(frozen=True)
class QueueState:
    """Whether the queue may start jobs, and why not. ``length`` counts the queued jobs."""

    paused: bool = False
    reason: str | None = None
    length: int = 0
    #: The pause was made by the daily budget (it lifts by itself when the budget allows).
    by_budget: bool = False
    #: The estimated cost of the operations created today (UTC), in US dollars.
    spent_today_usd: float = 0.0
    #: The daily budget in US dollars (None: no limit).
    daily_budget_usd: float | None = None
    #: A resume overrode the daily budget for the rest of today (UTC).
    budget_override: bool = False
    #: The generator is the simulator: nothing is really spent.
    spend_simulated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "reason": self.reason,
            "length": self.length,
            "by_budget": self.by_budget,
            "spent_today_usd": self.spent_today_usd,
            "daily_budget_usd": self.daily_budget_usd,
            "budget_override": self.budget_override,
            "spend_simulated": self.spend_simulated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueueState:
        budget = data.get("daily_budget_usd")
        return cls(
            paused=bool(data.get("paused")),
            reason=data.get("reason"),
            length=int(data.get("length") or 0),
            by_budget=bool(data.get("by_budget")),
            spent_today_usd=float(data.get("spent_today_usd") or 0.0),
            daily_budget_usd=float(budget) if budget is not None else None,
            budget_override=bool(data.get("budget_override")),
            spend_simulated=bool(data.get("spend_simulated")),
        )


#: Where a queued job can be moved to, besides a 1-based position.
MOVES: tuple[str, ...] = ("top", "bottom", "up", "down")


@dataclass(frozen=True)
class Change:
    """What subscribers receive: a job's new state, that a job was deleted, or the queue's
    new state (kind ``queue``: paused or resumed; ``job_id`` is empty)."""

    kind: str  # "job", "deleted" or "queue"
    job_id: str
    job: Job | None = None
    queue: QueueState | None = None
