"""The backend interface. ``LocalBackend`` runs the engine in-process; ``RemoteBackend``
talks to ``veotui serve`` over HTTP. The TUI and the CLI only ever see this interface, and
one conformance test suite runs against both implementations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from veotui.core.access import Actor, AuditEntry, Role
from veotui.core.errors import JobNotFound, VeotuiError
from veotui.core.job import Change, Job, JobEvent, JobLists, QueueState
from veotui.core.prices import PriceTable
from veotui.core.webhooks import Delivery
from veotui.datadir.health import StorageState

#: Queued jobs in one answer of ``list_jobs`` unless asked otherwise.
QUEUE_PAGE = 200

#: An input image as given: its bytes (any common format) and its file name.
Upload = tuple[bytes, str | None]


@dataclass(frozen=True)
class BackendInfo:
    """What the TUI header shows."""

    location: str  # "local" or the server URL
    generator: str  # "sim" or "veo"
    is_simulator: bool
    max_concurrent: int
    data_dir: str | None = None
    #: Whether the engine's disk accepts writes ("storage full / read-only" otherwise).
    storage: StorageState = field(default_factory=StorageState)
    #: The engine's price table (the config file's overrides included), for estimates.
    prices: PriceTable = field(default_factory=PriceTable)
    #: Seconds after a download before the engine deletes a completed job; None: never.
    auto_delete_after_download: float | None = None
    #: Whether jobs keep files in a Cloud Storage bucket (a delete removes them too).
    cloud_bucket: bool = False
    #: On PostgreSQL, the fleet: ``server_id`` (this server), ``servers`` (the live ones,
    #: each with ``server_id``, ``url``, ``host``, ``pid``), ``slots_in_use`` (processing
    #: jobs across the fleet). None with SQLite (one server).
    fleet: dict[str, Any] | None = None
    #: Whether the data directory is the job files' home (one server, or a fleet sharing
    #: it); False: the bucket is, and each server's directory is a cache.
    shared_dir: bool = True

    @property
    def fleet_size(self) -> int | None:
        """How many servers are live in the fleet (None: no fleet)."""
        return len(self.fleet.get("servers") or ()) if self.fleet is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "generator": self.generator,
            "is_simulator": self.is_simulator,
            "max_concurrent": self.max_concurrent,
            "data_dir": self.data_dir,
            "storage": self.storage.to_dict(),
            "prices": self.prices.to_dict(),
            "auto_delete_after_download": self.auto_delete_after_download,
            "cloud_bucket": self.cloud_bucket,
            "fleet": self.fleet,
            "shared_dir": self.shared_dir,
        }


#: Jobs of one group that a group's list, actions and zip take.
MAX_GROUP_JOBS = 1000


def group_zip_name(group: str) -> str:
    """The file name a group's zip is saved under."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in group)
    return f"veotui_group_{safe}.zip"


@dataclass(frozen=True)
class GroupAction:
    """What a cancel or delete of a group did: the jobs it acted on, and each job it left
    with the sentence that says why (already ended, another user's, deleted meanwhile)."""

    group: str
    done: list[str]
    left: list[tuple[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "done": self.done,
            "left": [{"job_id": job_id, "reason": reason} for job_id, reason in self.left],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupAction:
        return cls(
            group=data["group"],
            done=list(data["done"]),
            left=[(entry["job_id"], entry["reason"]) for entry in data["left"]],
        )


def _leave_or_raise(left: list[tuple[str, str]], job: Job, exc: VeotuiError) -> None:
    """A refusal of one job (409, 403, 404) leaves it with the reason; a fault of the engine
    (a full disk, a lost database) stops the whole action."""
    if exc.http_status >= 500:
        raise exc
    left.append((job.job_id, str(exc)))


@dataclass(frozen=True)
class Me:
    """Who the backend acts for, and that user's own budget and limit (GET /api/me)."""

    user: str
    role: Role
    daily_budget_usd: float | None = None
    spent_today_usd: float = 0.0
    max_concurrent: int | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.user, self.role)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "role": self.role.value,
            "daily_budget_usd": self.daily_budget_usd,
            "spent_today_usd": self.spent_today_usd,
            "max_concurrent": self.max_concurrent,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Me:
        return cls(
            user=str(data["user"]),
            role=Role(data["role"]),
            daily_budget_usd=data.get("daily_budget_usd"),
            spent_today_usd=float(data.get("spent_today_usd") or 0.0),
            max_concurrent=data.get("max_concurrent"),
        )


#: Entries in one answer of ``audit`` unless asked otherwise, and at most.
AUDIT_PAGE = 100
MAX_AUDIT_PAGE = 1000


class Backend(ABC):
    """Use as ``async with backend:``; every method raises :class:`veotui.core.errors.VeotuiError`
    subclasses (JobNotFound, Conflict, InvalidRequest, ...) with a sentence for a person."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open connections, start the engine."""

    async def close(self) -> None:
        """Stop cleanly; processing jobs stay resumable."""

    @abstractmethod
    async def info(self) -> BackendInfo: ...

    async def storage_status(self) -> StorageState:
        """Whether the engine's data directory accepts writes now ("storage full" or
        "storage read-only" when it does not; the engine carries on by itself after)."""
        return (await self.info()).storage

    @abstractmethod
    async def me(self) -> Me:
        """Who this backend acts for: the user and role the engine's rules apply to."""

    @abstractmethod
    async def audit(
        self, *, user: str | None = None, job_id: str | None = None, limit: int = AUDIT_PAGE, offset: int = 0
    ) -> list[AuditEntry]:
        """The audit log, newest first, one page, optionally of one user or one job (an
        admin's alone)."""

    @abstractmethod
    async def models(self) -> dict[str, Any]:
        """Every model with what it accepts, its prices by resolution (the engine's table),
        whether it is preview, and the source and date of each fact (``veotui.core.catalog``)."""

    @abstractmethod
    async def submit(
        self,
        fields: Mapping[str, Any],
        image: bytes | None = None,
        image_name: str | None = None,
        *,
        last_frame: Upload | None = None,
        references: Sequence[Upload] = (),
        idempotency_key: str | None = None,
    ) -> Job:
        """Queue a job. ``fields`` are the job fields (validated here); ``image`` the raw
        bytes of an input image in any common format; ``last_frame`` and ``references``
        the other input images (Veo 3.1 modes). The same ``idempotency_key`` with the same
        request within 24 h answers the job it made the first time and makes no other."""

    @abstractmethod
    async def get(self, job_id: str) -> Job: ...

    @abstractmethod
    async def webhook_deliveries(self, job_id: str | None = None, *, limit: int = 100) -> list[Delivery]:
        """The webhook deliveries (of one job), newest first, with their attempts (admin)."""

    @abstractmethod
    async def test_webhooks(self) -> list[dict[str, Any]]:
        """Send a ``ping`` to every hook now: each hook's ``url``, ``status`` (None: no
        answer), ``answer``, ``seconds`` and whether it was ``delivered`` (admin)."""

    @abstractmethod
    async def resolve(self, prefix: str) -> str:
        """The full id of the one job whose id starts with ``prefix``."""

    @abstractmethod
    async def list_jobs(
        self,
        *,
        history_limit: int = 100,
        history_offset: int = 0,
        text: str | None = None,
        queue_limit: int = QUEUE_PAGE,
        queue_offset: int = 0,
    ) -> JobLists:
        """The three panels: every processing job, one page of the queue and one of the
        history, with the totals of both; ``text`` filters all of them by prompt, id or
        status."""

    @abstractmethod
    async def group_jobs(self, group: str) -> list[Job]:
        """The jobs of ``group`` in the order they were queued (at most ``MAX_GROUP_JOBS``);
        JobNotFound when it has none."""

    async def cancel_group(self, group: str) -> GroupAction:
        """Cancel every job of ``group`` that is not over and that the caller may cancel;
        the others are left, each with the reason."""
        done: list[str] = []
        left: list[tuple[str, str]] = []
        for job in await self.group_jobs(group):
            if job.status.is_final:
                left.append((job.job_id, f"already {job.status.value}"))
                continue
            try:
                await self.cancel(job.job_id)
            except VeotuiError as exc:
                _leave_or_raise(left, job, exc)  # ended meanwhile, or the caller may not
            else:
                done.append(job.job_id)
        return GroupAction(group, done, left)

    async def delete_group(self, group: str) -> GroupAction:
        """Delete every job of ``group`` that the caller may delete, with its files; the
        others are left, each with the reason."""
        done: list[str] = []
        left: list[tuple[str, str]] = []
        for job in await self.group_jobs(group):
            try:
                await self.delete(job.job_id)
            except JobNotFound:
                continue  # deleted meanwhile: what was asked is done
            except VeotuiError as exc:
                _leave_or_raise(left, job, exc)
            else:
                done.append(job.job_id)
        return GroupAction(group, done, left)

    @abstractmethod
    async def download_group(self, group: str, dest_dir: Path) -> Path:
        """Save the videos of every completed job of ``group`` as one zip in ``dest_dir``,
        laid out as ``<job id>/<video file>``; starts each job's auto-delete timer."""

    @abstractmethod
    async def cancel(self, job_id: str) -> Job: ...

    @abstractmethod
    async def retry(self, job_id: str) -> Job: ...

    @abstractmethod
    async def delete(self, job_id: str) -> None: ...

    @abstractmethod
    async def queue(self) -> QueueState:
        """Whether the queue is paused (and why), and how many jobs wait in it."""

    @abstractmethod
    async def pause(self, reason: str | None = None) -> QueueState:
        """Start nothing new until :meth:`resume`; processing jobs go on, submitting still
        works. Persisted: the pause survives a restart."""

    @abstractmethod
    async def resume(self) -> QueueState: ...

    @abstractmethod
    async def move(self, job_id: str, *, to: str | None = None, position: int | None = None) -> Job:
        """Move a queued job ``to`` top, bottom, up or down, or to a 1-based ``position``
        (past the end: the bottom). Conflict unless the job is queued."""

    @abstractmethod
    async def timeline(self, job_id: str) -> list[JobEvent]:
        """Every transition of the job, oldest first, with timestamps."""

    @abstractmethod
    async def metrics(self) -> dict[str, Any]:
        """Queue, outcome, timing, cost and storage figures (docs/api.md, GET /api/metrics)."""

    @abstractmethod
    async def metric_series(self, hours: int = 24) -> list[dict[str, Any]]:
        """One entry per hour for the last ``hours`` hours, oldest first: jobs ended by
        status and the longest queue of the hour."""

    @abstractmethod
    async def download_zip(self, job_id: str, dest_dir: Path, *, keep: bool = False) -> Path:
        """Save the job's videos as one zip in ``dest_dir``; starts the auto-delete timer
        unless ``keep``."""

    @abstractmethod
    async def download_video(self, job_id: str, index: int, dest_dir: Path) -> Path:
        """Save one video (1-based ``index``) in ``dest_dir``."""

    @abstractmethod
    async def view_video(self, job_id: str, index: int, dest_dir: Path) -> Path:
        """Fetch one video into ``dest_dir`` to look at it: unlike a download, it never
        starts the auto-delete timer."""

    async def download_all(self, job_id: str, dest_dir: Path, *, keep: bool = False) -> list[Path]:
        """Save every video one by one (which also starts the auto-delete timer, unless
        ``keep``)."""
        job = await self.get(job_id)
        save = self.view_video if keep else self.download_video
        return [await save(job_id, video.index, dest_dir) for video in job.videos]

    @abstractmethod
    def changes(self) -> AsyncIterator[Change]:
        """Every change as it commits, for as long as the caller iterates. A slow
        consumer sees the latest state of each job; it never stalls the engine. Besides
        jobs (``job``, ``deleted``), a ``queue`` change carries the queue's new state
        when it is paused or resumed. One job leaving the queue is one change: those
        behind it move up a place without a change of their own (``Job.queue_seq`` orders
        the queue). A remote backend also reports ``DISCONNECTED`` and ``CONNECTED`` (see
        ``veotui.core.job``)."""

    async def job_pictures(self, job_id: str, cache_dir: Path) -> list[tuple[str, list[tuple[str, Path]]]]:
        """Pictures of the job as PNG files on this machine: its input images, then the
        first, middle and last frames of each video, in rows of (title, [(caption, file)]).
        ``cache_dir`` holds copies fetched from elsewhere (remote mode)."""
        return []

    @abstractmethod
    async def input_files(self, job_id: str, dest_dir: Path) -> dict[str, Path]:
        """The job's input images as files on this machine, by their name in the job's
        folder (``uploaded_image.jpg``, ``last_frame.jpg``, ``reference_N.jpg``): the folder's
        own files in local mode, copies saved in ``dest_dir`` in remote mode."""

    def local_video_path(self, job: Job, index: int) -> Path | None:
        """Where the video lies on this machine, if it does (local mode only)."""
        return None
