"""Response shapes for the OpenAPI document. Documentation only: the routes build their JSON
from the model's ``to_dict()`` and are not validated against these on the way out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StatusName = Literal[
    "queued",
    "starting",
    "uploading_image",
    "generating",
    "processing",
    "downloading",
    "completed",
    "failed",
    "cancelled",
]


class Shape(BaseModel):
    # Strict, so a test that validates real answers against these notices any drift.
    model_config = ConfigDict(extra="forbid")


class Error(Shape):
    detail: str = Field(description="a sentence naming what is wrong")
    kind: Literal["forbidden"] | None = Field(
        default=None, description="forbidden: the caller's role does not allow it (403); nothing changed"
    )


class MeOut(Shape):
    user: str
    role: Literal["admin", "operator", "viewer"]
    daily_budget_usd: float | None = Field(description="this user's own daily budget (null: none)")
    spent_today_usd: float = Field(description="estimated US dollars this user's jobs cost today (UTC)")
    max_concurrent: int | None = Field(description="at most this many of this user's jobs processing (null: no limit)")


class AuditEntryOut(Shape):
    id: int
    ts: str = Field(description="when, ISO 8601 UTC")
    user: str
    role: str
    action: str = Field(description="submit, cancel, retry, delete, move, pause, resume or download")
    job_id: str | None
    detail: str | None = Field(description="what was done; 'refused: <why>' for a refusal")
    remote_addr: str | None


class AuditOut(Shape):
    entries: list[AuditEntryOut] = Field(description="newest first")
    limit: int
    offset: int


class VideoOut(Shape):
    index: int = Field(description="1-based")
    filename: str
    size_bytes: int
    url: str = Field(description="the REST path of this video")


class ExtendsOut(Shape):
    job_id: str
    video: int = Field(description="1-based")
    source_seconds: float | None = Field(
        default=None,
        description="the length of the video continued, measured at submit; the result is about 7 s longer",
    )
    source_aspect_ratio: str | None = Field(
        default=None,
        description="the aspect ratio of the video continued, recorded at submit; another one asked is sent "
        "with a caution",
    )


class JobOut(Shape):
    job_id: str
    status: StatusName
    progress: int = Field(ge=0, le=100)
    queue_position: int | None = Field(description="1-based place in the queue while queued")
    queue_seq: float = Field(description="the queue's sort key: queued jobs in FIFO order have rising values")
    prompt: str
    number_of_videos: int
    model: str
    aspect_ratio: str
    duration_seconds: int
    resolution: str
    negative_prompt: str | None
    seed: int | None
    user: str
    generate_audio: bool | None = Field(description="null: the model's default (sound)")
    person_generation: Literal["allow_adult", "dont_allow", "allow_all"] | None
    enhance_prompt: bool | None
    reference_type: Literal["asset", "style"] | None
    extends: ExtendsOut | None = Field(description="the job's video this job continues")
    group: str | None = Field(default=None, description="the group (a sweep) the job belongs to")
    after: str | None = Field(
        default=None, description="the job this one waits for (as submitted, or the unfinished job it extends)"
    )
    has_image: bool
    has_last_frame: bool
    reference_count: int = Field(ge=0, le=3)
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int
    error: str | None
    error_kind: str | None
    operation: str | None
    videos: list[VideoOut]
    stage_started_at: str | None
    eta_seconds: int | None
    retry_at: str | None = Field(
        default=None, description="while the job waits out a backoff: when it tries again (UTC)"
    )
    retry_reason: str | None = Field(default=None, description="why it waits: rate limited, or temporary fault")
    waiting_for: str | None = Field(
        default=None, description="while queued: the job it waits for, until that job completes (null: none)"
    )
    waiting_reason: str | None = Field(
        default=None,
        description="why a queued job that could start does not: the job it waits for, the queue is paused, "
        "its user's daily budget or limit of jobs at once (a sentence)",
    )
    downloaded_at: str | None
    estimated_cost_usd: float | None = Field(
        description="US dollars Google charges for it, from the price table when it was submitted"
    )
    retry_reuses_operation: bool = Field(
        description="a retry fetches the videos of the finished generation again (no new charge) "
        "instead of submitting again (charged again)"
    )


class JobListsOut(Shape):
    processing: list[JobOut]
    queued: list[JobOut] = Field(description="FIFO order")
    history: list[JobOut] = Field(description="newest first, one page")
    history_total: int
    queued_total: int = Field(description="every queued job, for paging the queue")


class QueueOut(Shape):
    paused: bool
    reason: str | None = Field(description="why the queue is paused (null: not paused, or no reason given)")
    length: int = Field(description="queued jobs")
    by_budget: bool = Field(description="the daily budget paused it")
    spent_today_usd: float = Field(
        description="US dollars: the estimates of the operations created today (UTC); simulated with the simulator"
    )
    daily_budget_usd: float | None = Field(description="estimated US dollars a UTC day may spend (null: no limit)")
    budget_override: bool = Field(description="a resume lifted the daily budget for the rest of today (UTC)")
    spend_simulated: bool = Field(description="the simulator runs the jobs: nothing is really spent")


class LeftOut(Shape):
    job_id: str
    reason: str = Field(description="why the job was left: already ended, or the caller may not act on it")


class GroupActionOut(Shape):
    group: str
    done: list[str] = Field(description="the ids of the jobs acted on")
    left: list[LeftOut] = Field(description="the jobs of the group left as they were")


class DeletedOut(Shape):
    job_id: str
    deleted: Literal[True]


class JobEventOut(Shape):
    job_id: str
    at: str
    status: StatusName
    detail: str | None


class TimelineOut(Shape):
    job_id: str
    events: list[JobEventOut]


class PictureOut(Shape):
    caption: str = Field(description="input image, last frame, reference N; or first, middle, last")
    name: str
    url: str = Field(description="the REST path of the PNG")


class PictureRowOut(Shape):
    title: str = Field(description="Inputs, or Video N")
    pictures: list[PictureOut]


class PicturesOut(Shape):
    job_id: str
    rows: list[PictureRowOut]


class ResolvedOut(Shape):
    job_id: str


class StageSecondsOut(Shape):
    p50: float | None
    p95: float | None
    count: int


class MetricsOut(Shape):
    queue_length: int
    processing: int
    completed: int
    failed: int
    cancelled: int
    success_rate: float | None
    avg_processing_seconds: float | None
    jobs_by_user: dict[str, int]
    errors_by_kind: dict[str, int]
    queue_wait_seconds_avg: float | None = Field(description="mean time from queued to started")
    processing_seconds_p50: float | None = Field(description="median start-to-completion time (from histogram buckets)")
    processing_seconds_p95: float | None = Field(description="95th percentile, estimated like the median")
    estimated_cost_usd_total: float
    storage_bytes: int = Field(description="bytes in the data directory (refreshed at most every 30 s)")
    retries_by_call: dict[str, int]
    spend_today_usd: float = Field(description="estimated cost of the generations bought today (UTC)")
    daily_budget_usd: float | None = Field(description="the daily budget, null when none is set")
    stage_seconds: dict[str, StageSecondsOut] = Field(description="median and 95th percentile time per stage")


class HourOut(Shape):
    hour: str = Field(description="start of the hour, UTC")
    completed: int
    failed: int
    cancelled: int
    queue_length_max: int


class SeriesOut(Shape):
    hours: int
    series: list[HourOut] = Field(description="one entry per hour, oldest first, the current hour last")


class StorageOut(Shape):
    state: Literal["ok", "full", "read_only", "damaged", "unavailable"] = Field(
        description="whether the data directory accepts writes"
    )
    reason: str | None = Field(description="why it does not, as a sentence")
    since: str | None = Field(description="when it stopped accepting writes (UTC)")


class FleetServerOut(Shape):
    server_id: str
    url: str | None
    host: str
    pid: int


class FleetOut(Shape):
    server_id: str = Field(description="this server's id in the fleet")
    servers: list[FleetServerOut] = Field(
        description="the live servers of the fleet, oldest first (none while the database cannot be reached)"
    )
    slots_in_use: int | None = Field(
        description="jobs processing across the whole fleet; null while the database cannot be reached"
    )


class InfoOut(Shape):
    location: str
    generator: str
    is_simulator: bool
    max_concurrent: int
    data_dir: str | None
    storage: StorageOut
    prices: dict[str, dict[str, dict[str, float]]] = Field(
        description="the price table in use: model -> audio|silent -> resolution -> US dollars per second"
    )
    cloud_bucket: bool = Field(default=False, description="whether jobs keep files in a Cloud Storage bucket")
    auto_delete_after_download: float | None = Field(
        default=None, description="seconds after a download before a completed job is deleted; null: never"
    )
    fleet: FleetOut | None = Field(default=None, description="the fleet on PostgreSQL; null with SQLite")
    shared_dir: bool = Field(
        default=True,
        description="whether the data directory holds the job files (one server, or a fleet sharing it);"
        " false: the bucket holds them and each server's directory is a cache",
    )
    version: str


class RangeOut(Shape):
    min: int
    max: int


class ExtensionOut(Shape):
    source_seconds: RangeOut = Field(description="how long the video continued may be")
    adds_seconds: int = Field(description="how much longer the result is than the video continued")
    resolutions: list[str]
    durations: list[int] = Field(description="the length an extension is asked for")


class AcceptsOut(Shape):
    modes: list[Literal["text", "image", "first_last_frame", "reference_images", "extension", "sound"]]
    resolutions: list[str]
    durations: list[int] = Field(description="seconds, at every resolution")
    durations_with_reference_images: list[int]
    number_of_videos: RangeOut
    aspect_ratios: list[str]
    reference_types: list[str]
    max_reference_images: int
    extension: ExtensionOut | None = Field(description="null: the model does not extend videos")


class ModelPricesOut(Shape):
    audio: dict[str, float] = Field(description="resolution -> US dollars a second, with sound")
    silent: dict[str, float] = Field(description="resolution -> US dollars a second, without sound")
    uncertain: list[str] = Field(description="the figures (silent_720p, ...) no Google page gives")
    note: str
    source: str | None = Field(description='a key of "sources", or "config file" when it overrides the figures')


class FactOut(Shape):
    fact: str
    label: str
    value: str = Field(description="what the model does, for people")
    sources: list[str] = Field(description='keys of "sources"')


class ModelOut(Shape):
    model: str
    default: bool
    status: Literal["GA", "preview"]
    preview: bool
    accepts: AcceptsOut
    prices: ModelPricesOut
    facts: list[FactOut]


class SourceOut(Shape):
    title: str
    url: str
    read_on: str = Field(description="when the page was read (YYYY-MM-DD)")
    by_google: bool = Field(description="a page of Google's; only these may refuse what a user asks")
    says: str


class ModelsOut(Shape):
    default_model: str
    models: list[ModelOut]
    sources: dict[str, SourceOut]


class AttemptOut(Shape):
    at: str
    status: int | None = Field(description="the receiver's HTTP status; null: no answer (refused, timed out)")
    answer: str = Field(description="the start of the receiver's answer, or what went wrong")
    seconds: float


class DeliveryOut(Shape):
    delivery_id: str
    url: str = Field(description="the hook it goes to (from the server's config file)")
    event: str = Field(description="job.<status>")
    job_id: str | None
    state: Literal["pending", "delivered", "failed"]
    created_at: str = Field(description="when the event happened")
    next_attempt_at: str | None = Field(description="when a pending delivery is tried next")
    tries: int = Field(description="attempts made so far")
    attempts: list[AttemptOut] = Field(description="the latest attempts (up to 50), oldest first")


class DeliveriesOut(Shape):
    deliveries: list[DeliveryOut]


class HookTestResultOut(Shape):
    url: str
    status: int | None
    answer: str
    seconds: float
    delivered: bool = Field(description="whether the hook answered 2xx")


class HookTestOut(Shape):
    results: list[HookTestResultOut]


class HealthOut(Shape):
    status: Literal["ok"]


class HealthDegradedOut(Shape):
    status: Literal["degraded"]
    storage: Literal["full", "read_only", "damaged", "unavailable"]
    detail: str = Field(description="what is wrong, as a sentence")


def answers(model: type[BaseModel] | None, *errors: int, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: its answer, and the error statuses it can give."""
    described: dict[int | str, dict[str, Any]] = {}
    if model is not None:
        described[status] = {"model": model}
    for code in errors:
        described[code] = {"model": Error}
    return described
