"""The job: its fields, its nine statuses and the transitions allowed between them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from veotui import capabilities
from veotui.capabilities import PERSON_GENERATION, REFERENCE_TYPES
from veotui.errors import InvalidRequest, clipped


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


#: The choices and defaults of a request, from the per-model table in veotui.capabilities.
MODELS = capabilities.MODELS
DEFAULT_MODEL = capabilities.DEFAULT_MODEL
ASPECT_RATIOS = capabilities.ASPECT_RATIOS
DEFAULT_ASPECT_RATIO = capabilities.DEFAULT_ASPECT_RATIO
DURATIONS = capabilities.DURATIONS
DEFAULT_DURATION = capabilities.DEFAULT_DURATION
RESOLUTIONS = capabilities.RESOLUTIONS
DEFAULT_RESOLUTION = capabilities.DEFAULT_RESOLUTION
MAX_VIDEOS = capabilities.MAX_VIDEOS
MAX_PROMPT_CHARS = 4000
MAX_SEED = 2**32 - 1
MAX_USER_CHARS = 200


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


def new_job_id() -> str:
    import uuid  # here: a client verb that only reads jobs never loads it

    return str(uuid.uuid4())


def is_job_id(text: str) -> bool:
    try:
        import uuid

        return str(uuid.UUID(text)) == text
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True)
class JobRequest:
    """What a user asks for.

    Input from a person or a client (form fields, JSON, CLI flags) comes in through
    :meth:`from_mapping`, which validates. A request read back from the store or from the
    server's JSON (:meth:`from_dict`) was validated when it was submitted and is trusted."""

    prompt: str
    number_of_videos: int = 1
    model: str = DEFAULT_MODEL
    aspect_ratio: str = DEFAULT_ASPECT_RATIO
    duration_seconds: int = DEFAULT_DURATION
    resolution: str = DEFAULT_RESOLUTION
    negative_prompt: str | None = None
    seed: int | None = None
    user: str = "local"
    generate_audio: bool | None = None
    person_generation: str | None = None
    enhance_prompt: bool | None = None
    reference_type: str | None = None
    extends: Extends | None = None

    FIELDS = (
        "prompt",
        "number_of_videos",
        "model",
        "aspect_ratio",
        "duration_seconds",
        "resolution",
        "negative_prompt",
        "seed",
        "user",
        "generate_audio",
        "person_generation",
        "enhance_prompt",
        "reference_type",
        "extends",
    )
    #: Accepted on input beside ``extends``: the form's spelling of it.
    EXTENDS_FIELDS = ("extends_job_id", "extends_video")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, user: str | None = None) -> JobRequest:
        """Validate raw input (form fields, JSON, CLI flags); the error names the field."""
        unknown = sorted(set(data) - set(cls.FIELDS) - set(cls.EXTENDS_FIELDS))
        if unknown:
            accepted = ", ".join((*cls.FIELDS, *cls.EXTENDS_FIELDS))
            raise InvalidRequest(f"unknown field {clipped(unknown[0])}; accepted fields: {accepted}")
        prompt = data.get("prompt")
        if isinstance(prompt, str):
            refuse_controls("prompt", prompt, allow="\n\t")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("prompt is required and must be non-empty text")
        prompt = _valid_unicode("prompt", prompt.strip())
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"prompt is {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
        count = _whole_number(data, "number_of_videos", 1)
        if not 1 <= count <= MAX_VIDEOS:
            raise InvalidRequest(f"number_of_videos must be 1 to {MAX_VIDEOS}, got {count}")
        model = _choice(data, "model", DEFAULT_MODEL, MODELS)
        aspect = _choice(data, "aspect_ratio", DEFAULT_ASPECT_RATIO, ASPECT_RATIOS)
        duration = _whole_number(data, "duration_seconds", DEFAULT_DURATION)
        if duration not in DURATIONS:
            raise InvalidRequest(f"duration_seconds must be one of {', '.join(map(str, DURATIONS))}, got {duration}")
        resolution = _choice(data, "resolution", DEFAULT_RESOLUTION, RESOLUTIONS)
        negative = data.get("negative_prompt")
        if negative is not None:
            if not isinstance(negative, str):
                raise InvalidRequest("negative_prompt must be text")
            refuse_controls("negative_prompt", negative, allow="\n\t")
            negative = _valid_unicode("negative_prompt", negative.strip()) or None
            if negative and len(negative) > MAX_PROMPT_CHARS:
                raise InvalidRequest(f"negative_prompt is longer than {MAX_PROMPT_CHARS} characters")
        seed = data.get("seed")
        if seed is not None and seed != "":
            seed = _whole_number(data, "seed", 0)
            if not 0 <= seed <= MAX_SEED:
                raise InvalidRequest(f"seed must be 0 to {MAX_SEED}, got {seed}")
        else:
            seed = None
        who = user if user is not None else data.get("user", "local")
        if isinstance(who, str):
            refuse_controls("user", who)
        if not isinstance(who, str) or not who.strip() or len(who) > MAX_USER_CHARS:
            raise InvalidRequest(f"user must be non-empty text of at most {MAX_USER_CHARS} characters")
        return cls(
            prompt=prompt,
            number_of_videos=count,
            model=model,
            aspect_ratio=aspect,
            duration_seconds=duration,
            resolution=resolution,
            negative_prompt=negative,
            seed=seed,
            user=_valid_unicode("user", who.strip()),
            generate_audio=_switch(data, "generate_audio"),
            person_generation=_optional_choice(data, "person_generation", PERSON_GENERATION),
            enhance_prompt=_switch(data, "enhance_prompt"),
            reference_type=_optional_choice(data, "reference_type", REFERENCE_TYPES),
            extends=Extends.from_fields(data),
        )

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.FIELDS}
        data["extends"] = self.extends.to_dict() if self.extends else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRequest:
        """A request as :meth:`to_dict` wrote it (already validated)."""
        values = {name: data[name] for name in cls.FIELDS if name in data}
        if values.get("extends") is not None:
            values["extends"] = Extends(job_id=values["extends"]["job_id"], video=int(values["extends"]["video"]))
        return cls(**values)


@dataclass(frozen=True)
class Extends:
    """This job continues video ``video`` (1-based) of the completed job ``job_id``."""

    job_id: str
    video: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "video": self.video}

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Extends | None:
        """From ``extends`` (``{"job_id", "video"}`` or a job id) or ``extends_job_id`` and
        ``extends_video``."""
        value = data.get("extends")
        job_id: Any = data.get("extends_job_id")
        video: Any = data.get("extends_video")
        if isinstance(value, Mapping):
            extra = sorted(set(value) - {"job_id", "video"})
            if extra:
                raise InvalidRequest(f"extends takes job_id and video, not {clipped(extra[0])}")
            job_id, video = value.get("job_id"), value.get("video", video)
        elif isinstance(value, str) and value:
            job_id = value
        elif value not in (None, ""):
            raise InvalidRequest('extends must be {"job_id": ..., "video": N} or a job id')
        if job_id in (None, ""):
            if video not in (None, ""):
                raise InvalidRequest("extends_video needs extends_job_id: the job whose video to continue")
            return None
        if not isinstance(job_id, str) or not is_job_id(job_id.strip().lower()):
            raise InvalidRequest(f"extends_job_id must be a job id (a UUID), got {clipped(job_id)}")
        number = _whole_number({"extends_video": video}, "extends_video", 1)
        if number < 1:
            raise InvalidRequest(f"extends_video is 1-based, got {number}")
        return cls(job_id=job_id.strip().lower(), video=number)


#: C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates, which
#: reorder the text shown after them.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def refuse_controls(name: str, text: str, allow: str = "") -> None:
    """Refuse a control character (other than those in ``allow``), naming it and its
    1-based position; nothing is stripped silently."""
    for match in _CONTROLS.finditer(text):
        char = match.group()
        if char not in allow:
            what = "bidirectional override" if char >= "\u202a" else "control character"
            kept = " (only newline and tab are allowed)" if allow else ""
            raise InvalidRequest(
                f"{name} contains the {what} U+{ord(char):04X} at position {match.start() + 1}; remove it{kept}"
            )


def printable(text: str, keep: str = "\n\t") -> str:
    """``text`` safe to send to a terminal: each control character (but those in ``keep``)
    and each bidi override is shown as its escape (``\\x1b``, ``\\u202e``), never sent."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return char if char in keep else char.encode("unicode_escape").decode("ascii")

    return _CONTROLS.sub(escape, text)


def printable_json(text: str) -> str:
    """JSON text (as ``json.dumps(..., ensure_ascii=False)`` writes it) with the controls it
    leaves raw (C1, DEL, the bidi overrides) written as ``\\uXXXX`` escapes: still the same
    JSON, and safe to send to a terminal."""
    return _CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _valid_unicode(name: str, text: str) -> str:
    """JSON's \\ud800 escapes decode to lone surrogates, which no file or database can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{name} contains a lone surrogate, which is not valid Unicode text") from None
    return text


def _whole_number(data: Mapping[str, Any], name: str, default: int) -> int:
    value = data.get(name, default)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a whole number, got {clipped(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidRequest(f"{name} must be a whole number, got {clipped(value)}")


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _switch(data: Mapping[str, Any], name: str) -> bool | None:
    """A three-way switch: true, false, or absent/null for the model's default."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidRequest(f"{name} must be true or false (or left out for the model's default), got {clipped(value)}")


def _optional_choice(data: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}, got {clipped(value)}")


def _choice(data: Mapping[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = data.get(name, default)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}, got {clipped(value)}")
    return str(value)


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
    #: between two neighbours, possibly on a fraction (see Store.move).
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
            estimated_cost_usd=data.get("estimated_cost_usd"),
            operation_done=bool(data.get("retry_reuses_operation")),
        )


_JOB_FIELDS = frozenset(f.name for f in dataclasses.fields(Job))


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
    queued_total: int = None  # type: ignore[assignment]

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
