"""The offline simulator. Its "remote" operations are JSON files under
``<data>/sim/operations/``, one per submit, with an absolute finish time, so a restarted
process resumes the very same operation. Markers in the prompt drive it:

- ``[fail]``: the operation ends in a permanent error;
- ``[flaky]``: the first two submit calls of the job raise a transient rate-limit error;
- ``[filtered]``: the operation finishes with zero videos, blocked by the safety filter;
- ``[unfetchable]``: the first fetch of the job's videos fails, as when they cannot be read
  from the bucket; a retry fetches them (without a new submit).

With a bucket (a fleet whose servers share no data directory) the operations are objects
under ``sim_operations/<job_id>/`` in the bucket instead, so that any server of the fleet
resumes any job's operation, as with Veo.

Every Veo 3.1 mode shows in the video it renders (see :func:`render_video`): its size grows
with the resolution asked (4k is drawn small, see ``render.WIDTHS``), and an extension is 7 s
longer than the video it continues.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import anyio

from veotui.core.capabilities import EXTENSION_ADDS_SECONDS
from veotui.core.errors import ErrorKind
from veotui.core.job import Job, isoformat, parse_time, utcnow
from veotui.datadir.files import IMAGE_NAME, INPUT_VIDEO_NAME, LAST_FRAME_NAME, reference_name, video_name, write_atomic
from veotui.datadir.privacy import private_dir
from veotui.generators.base import GenerationResult, Generator, JobInputs, PermanentFault, TransientFault
from veotui.generators.gcs import Bucket, sim_operations_prefix
from veotui.generators.render import render_video, video_seconds
from veotui.logs import event

log = logging.getLogger(__name__)

FLAKY_FAILURES = 2


class SimGenerator(Generator):
    name = "sim"
    is_simulator = True
    operations_can_hang = False
    default_poll_interval = 1.0
    knows_its_operations = True
    # Small preview frames: a few kilobytes a second whatever the resolution asked for.
    bytes_per_video_second: ClassVar[Mapping[str, int]] = {"720p": 4_000, "1080p": 4_000, "4k": 4_000}

    def __init__(self, root: Path, seconds: float = 8.0, bucket: Bucket | None = None) -> None:
        self.root = root
        self.seconds = seconds
        self.bucket = bucket
        self.typical_seconds = max(seconds, 0.1)
        self.operations = root / "operations"
        self.calls = root / "calls"
        for folder in (root, self.operations, self.calls):
            private_dir(folder)

    async def submit(self, job: Job, inputs: JobInputs) -> str:
        if "[flaky]" in job.prompt and self._count_call(job.job_id) <= FLAKY_FAILURES:
            raise TransientFault("429 RESOURCE_EXHAUSTED: simulated rate limit, try again later")
        op_id = uuid.uuid4().hex
        name = f"sim/operations/{op_id}"
        now = utcnow()
        record = {
            "name": name,
            "job_id": job.job_id,
            "created_at": isoformat(now),
            "done_at": isoformat(now + timedelta(seconds=self.seconds)),
            "prompt": job.prompt,
            "number_of_videos": job.request.number_of_videos,
            "aspect_ratio": job.request.aspect_ratio,
            "duration_seconds": job.request.duration_seconds,
            "resolution": job.request.resolution,
            "seed": job.request.seed,
            "image": str(inputs.image) if inputs.image else None,
            "last_frame": str(inputs.last_frame) if inputs.last_frame else None,
            "references": [str(path) for path in inputs.references],
            "video": str(inputs.video) if inputs.video else None,
            # Veo 3.1 makes sound unless told not to.
            "generate_audio": job.request.generate_audio is not False,
            "enhance_prompt": job.request.enhance_prompt,
        }
        if self.bucket is not None:
            await self.bucket.write_json(self._object(job.job_id, name), record)
        else:
            write_atomic(self._path(name), json.dumps(record, indent=1).encode())
        return name

    async def find_operation(self, job: Job) -> str | None:
        for record in await self._records(job.job_id):
            created = parse_time(record.get("created_at"))
            since = job.stage_started_at
            if record.get("job_id") == job.job_id and (since is None or (created and created >= since)):
                return str(record["name"])
        return None

    async def poll(self, job: Job, operation: str) -> GenerationResult | None:
        record = await self._read(job.job_id, operation)
        if utcnow() < (parse_time(record["done_at"]) or utcnow()):
            return None
        prompt = record["prompt"]
        if "[fail]" in prompt:
            raise PermanentFault(
                "Veo (simulated) ended the operation with an error: 3 INVALID_ARGUMENT; "
                "the prompt asks for [fail]. Edit the prompt and submit again.",
                kind=ErrorKind.OPERATION_ERROR,
            )
        if "[filtered]" in prompt:
            raise PermanentFault(
                "The safety filter blocked every video (simulated; 1 filtered: the prompt asks for "
                "[filtered]). Google does not charge for filtered attempts. Rephrase the prompt.",
                kind=ErrorKind.SAFETY_FILTER,
            )
        return GenerationResult(videos=list(range(1, record["number_of_videos"] + 1)))

    def save_result(self, result: GenerationResult) -> Any | None:
        return {"videos": list(result.videos)}

    def load_result(self, saved: Any) -> GenerationResult | None:
        videos = saved.get("videos") if isinstance(saved, dict) else None
        if not isinstance(videos, list) or not all(isinstance(v, int) for v in videos):
            return None
        return GenerationResult(videos=videos)

    async def fetch(self, job: Job, result: GenerationResult, dest: Path) -> list[Path]:
        if "[unfetchable]" in job.prompt and self._count_call(f"{job.job_id}.fetch") == 1:
            raise PermanentFault(
                "the finished generation's videos could not be read (simulated: the prompt asks for "
                "[unfetchable]). Retry to fetch them again; nothing is generated or charged again.",
                kind=ErrorKind.FETCH,
            )
        record = await self._read(job.job_id, job.operation) if job.operation else {}
        # Inputs recorded at submit, else (another server submitted it) this server's copies.
        image, last_frame, video = (
            _existing(record.get(key)) or _existing(dest / name)
            for key, name in (("image", IMAGE_NAME), ("last_frame", LAST_FRAME_NAME), ("video", INPUT_VIDEO_NAME))
        )
        recorded = record.get("references") or ()
        references = tuple(
            p
            for n, r in enumerate(recorded, 1)
            if (p := _existing(r) or _existing(dest / reference_name(n))) is not None
        )
        seconds = await anyio.to_thread.run_sync(_length, job, video)
        paths = []
        for index in result.videos:
            target = dest / video_name(index)
            render = functools.partial(
                render_video,
                target,
                prompt=job.prompt,
                index=index,
                seconds=seconds,
                aspect_ratio=job.request.aspect_ratio,
                resolution=record.get("resolution") or job.request.resolution,
                image_path=image,
                seed=job.request.seed,
                last_frame_path=last_frame,
                reference_paths=references,
                extends_path=video,
                audio=bool(record.get("generate_audio")),
                enhance_prompt=record.get("enhance_prompt"),
            )
            await anyio.to_thread.run_sync(render)
            paths.append(target)
        return paths

    async def cleanup(self, job: Job, *, everything: bool) -> None:
        if not everything:
            return
        if self.bucket is not None:
            await self.bucket.delete_prefix(sim_operations_prefix(job.job_id), job.job_id)
        for path in self.operations.glob("*.json"):
            try:
                if json.loads(path.read_text()).get("job_id") == job.job_id:
                    path.unlink(missing_ok=True)
                    event(
                        log,
                        logging.INFO,
                        "cleanup.object",
                        "removed simulator operation %s",
                        path.stem,
                        job_id=job.job_id,
                        uri=str(path),
                        outcome="deleted",
                    )
            except (OSError, ValueError):
                continue
        (self.calls / f"{job.job_id}.json").unlink(missing_ok=True)
        (self.calls / f"{job.job_id}.fetch.json").unlink(missing_ok=True)

    def _path(self, operation: str) -> Path:
        op_id = operation.rsplit("/", 1)[-1]
        if not op_id.isalnum():
            raise PermanentFault(f"unknown simulator operation {operation!r}", kind=ErrorKind.OPERATION_ERROR)
        return self.operations / f"{op_id}.json"

    def _object(self, job_id: str, operation: str) -> str:
        return f"{sim_operations_prefix(job_id)}{self._path(operation).name}"

    async def _read(self, job_id: str, operation: str) -> dict[str, Any]:
        found: dict[str, Any] | None = None
        if self.bucket is not None:
            found = await self.bucket.read_json(self._object(job_id, operation))
        else:
            with contextlib.suppress(FileNotFoundError):
                found = json.loads(self._path(operation).read_text())
        if found is None:
            raise PermanentFault(
                f"the simulator has no operation {operation}; it expired or was removed",
                kind=ErrorKind.OPERATION_LOST,
            )
        return found

    async def _records(self, job_id: str) -> list[dict[str, Any]]:
        """The job's operations, oldest name first."""
        if self.bucket is not None:
            names = sorted(await self.bucket.names(sim_operations_prefix(job_id)))
            records = [await self.bucket.read_json(name) for name in names]
            return [record for record in records if record is not None]
        found = []
        for path in sorted(self.operations.glob("*.json")):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return found

    def _count_call(self, job_id: str) -> int:
        path = self.calls / f"{job_id}.json"
        try:
            count = int(json.loads(path.read_text())["calls"]) + 1
        except (OSError, ValueError, KeyError):
            count = 1
        write_atomic(path, json.dumps({"calls": count}).encode())
        return count


def _length(job: Job, video: Path | None) -> float:
    """How long the job's videos are: the length asked, or for an extension, as with Veo,
    the video it continues plus 7 s."""
    if job.request.extends is None:
        return float(job.request.duration_seconds)
    source = job.request.extends.source_seconds
    if video is not None:
        with contextlib.suppress(ValueError):  # the length recorded at submit stands in
            source = video_seconds(video)
    return (source if source is not None else job.request.duration_seconds) + EXTENSION_ADDS_SECONDS


def _existing(name: str | Path | None) -> Path | None:
    """An input recorded at submit, if it is still there (a deleted job's are not)."""
    path = Path(name) if name else None
    return path if path is not None and path.exists() else None
