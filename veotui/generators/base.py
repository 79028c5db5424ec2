"""The generator interface: what the scheduler needs from a video generation service.

A generation is a remote long-running *operation*. The scheduler records the operation's
name the moment ``submit`` returns it, so a restarted process resumes polling the same
operation instead of paying for a new one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from veotui.core.errors import ErrorKind
from veotui.core.job import Job
from veotui.core.request import JobRequest


class GeneratorFault(Exception):
    """A fault talking to the generator. ``str()`` is a sentence a person can act on."""

    kind: str = ErrorKind.GENERATOR


class TransientFault(GeneratorFault):
    """Worth retrying: rate limits, 5xx, timeouts, dropped connections."""

    kind = ErrorKind.TRANSIENT

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFault(GeneratorFault):
    """Retrying would fail the same way: bad request, refused quota, safety filter."""

    def __init__(self, message: str, kind: str = ErrorKind.PERMANENT) -> None:
        super().__init__(message)
        self.kind = kind


class SubmitOutcomeUnknown(GeneratorFault):
    """The submit request was sent but no answer came back: it may have been accepted
    (and billed). Never re-sent automatically."""

    kind = ErrorKind.SUBMIT_UNKNOWN


@dataclass(frozen=True)
class GenerationResult:
    """A finished operation: one opaque reference per generated video, in order."""

    videos: list[Any]
    filtered_count: int = 0
    filtered_reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JobInputs:
    """Everything a job is submitted with, as files in its folder, and where the service
    can read each one (a cloud URI) once uploaded; a ``*_ref`` left None travels inline."""

    image: Path | None = None
    last_frame: Path | None = None
    references: tuple[Path, ...] = ()
    video: Path | None = None
    image_ref: str | None = None
    last_frame_ref: str | None = None
    reference_refs: tuple[str, ...] = ()
    video_ref: str | None = None

    def files(self) -> list[Path]:
        return [p for p in (self.image, self.last_frame, *self.references, self.video) if p is not None]

    def with_refs(self, **refs: Any) -> JobInputs:
        return replace(self, **refs)


class Generator(ABC):
    """One implementation per service: ``sim`` (offline) and ``veo`` (Google Veo)."""

    name: str = "generator"
    #: Offline and free: shown as such to people (the header, ``veotui serve``).
    is_simulator: bool = False
    #: An operation may never finish on the service's side, so the scheduler fails a job
    #: whose operation runs longer than VEOTUI_VEO_DEADLINE. False: operations always end.
    operations_can_hang: bool = True
    default_poll_interval: float = 30.0
    #: How long a generation takes before any has been measured (the progress estimate).
    typical_seconds: float = 90.0
    #: True when ``find_operation`` is authoritative: None then means the submit certainly
    #: created nothing, so sending it again costs nothing twice.
    knows_its_operations: bool = False

    #: Rough size of one second of video at each resolution, for messages such as "needs
    #: about 20 MB" when the disk is full.
    bytes_per_video_second: ClassVar[Mapping[str, int]] = {"720p": 700_000, "1080p": 1_500_000, "4k": 6_000_000}

    def estimated_output_bytes(self, request: JobRequest) -> int:
        """About how much disk a job's videos take in its folder: the videos and their zip."""
        per_second = self.bytes_per_video_second.get(request.resolution, max(self.bytes_per_video_second.values()))
        seconds = request.video_seconds or request.duration_seconds
        return int(2 * request.number_of_videos * seconds * per_second)

    def validate(self, request: JobRequest) -> None:
        """Raise :class:`veotui.core.errors.InvalidRequest` if the service cannot do this request."""

    async def upload_image(self, job: Job, image_path: Path) -> str | None:
        """Make the job's input image available to the service; return a reference to it
        (a cloud URI), or None when it travels inline."""
        return None

    async def upload_inputs(self, job: Job, inputs: JobInputs) -> JobInputs:
        """Make every input available to the service; return ``inputs`` with the references
        filled in. The default uploads the image alone (a generator without other modes)."""
        if inputs.image is None:
            return inputs
        return inputs.with_refs(image_ref=await self.upload_image(job, inputs.image))

    @abstractmethod
    async def submit(self, job: Job, inputs: JobInputs) -> str:
        """Start the generation with every input (as :meth:`upload_inputs` returned them);
        return the operation's name."""

    async def find_operation(self, job: Job) -> str | None:
        """After a crash between sending a submit and recording its answer: the operation
        that submit created, if the service can tell. None when it cannot know."""
        return None

    @abstractmethod
    async def poll(self, job: Job, operation: str) -> GenerationResult | None:
        """None while the operation runs; its result once done. Raises a
        :class:`PermanentFault` when it ended in an error or was filtered."""

    def save_result(self, result: GenerationResult) -> Any | None:
        """What it takes to fetch ``result``'s videos again later, as JSON-able data (kept
        with the job until it is deleted). None when only polling the finished operation
        again can give them back (videos that came inline)."""
        return None

    def load_result(self, saved: Any) -> GenerationResult | None:
        """The result :meth:`save_result` saved; None if it cannot be read back."""
        return None

    @abstractmethod
    async def fetch(self, job: Job, result: GenerationResult, dest: Path) -> list[Path]:
        """Write every video of ``result`` into ``dest`` as ``generated_video_<n>.mp4``
        (each written whole, then renamed) and return the paths in order."""

    async def cleanup(self, job: Job, *, everything: bool) -> None:
        """Remove the job's remote files: the uploaded image when the job ends, and with
        ``everything`` (delete) its outputs too. Must be safe to call more than once."""

    async def aclose(self) -> None:
        """Release connections."""
