"""Job files whose home is the bucket: a fleet whose servers share no data directory.

Each server's data directory is then a cache (:class:`JobCache`). The bucket holds, per job:

- its inputs, uploaded at submit before the job exists: ``temp_images/<job_id>_<time>.jpg``
  (``_last_frame``, ``_reference_<n>`` for the other images) and, for an extension, the video it
  continues under ``temp_videos/``. They stay until the job is deleted, so any server can run
  it, and run it again on a retry;
- its videos under ``veo_outputs/<job_id>/``: where Veo wrote them, or
  ``generated_video_<n>.mp4`` for videos that reached the server another way (the
  simulator's, Veo's inline ones).

Whatever a server is asked for (a video, the zip, an input, pictures) it fetches into its cache
first, then serves from there.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import anyio

from veotui.core.errors import ErrorKind
from veotui.core.job import Job
from veotui.datadir.cache import JobCache
from veotui.datadir.files import (
    IMAGE_NAME,
    INPUT_VIDEO_NAME,
    LAST_FRAME_NAME,
    JobFiles,
    reference_name,
    video_name,
)
from veotui.generators.base import GenerationResult, Generator, JobInputs, PermanentFault
from veotui.generators.gcs import Bucket, image_prefix, job_prefixes, output_prefix, video_prefix
from veotui.logs import event

log = logging.getLogger(__name__)
_LABEL = re.compile(r"_(last_frame|reference_\d+)\.jpg$")


class BucketFiles:
    def __init__(self, bucket: Bucket, files: JobFiles, cache: JobCache, generator: Generator) -> None:
        self.bucket = bucket
        self.files = files
        self.cache = cache
        self.generator = generator

    # -- inputs ---------------------------------------------------------------------------

    async def put_inputs(self, job: Job) -> None:
        """Upload the inputs the job's folder holds. On any failure every object already
        uploaded is removed and the fault raised: the job is not created."""
        job_id = job.job_id
        try:
            for name, label in _input_labels(job):
                path = self.files.folder(job_id) / name
                await self.bucket.upload_image(job_id, path, label)
            if job.request.extends is not None:
                await self.bucket.upload_video(job_id, self.files.input_video(job_id))
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self.remove(job_id)
            raise

    async def inputs(self, job: Job) -> JobInputs:
        """The job's inputs in this server's cache (fetched from the bucket if need be), each
        with its address in the bucket, so the generator need not upload them again."""
        job_id = job.job_id
        objects = await self._input_objects(job_id)
        refs: dict[str, str] = {}
        for name, _label in _input_labels(job):
            uri = await self._cached(job_id, name, objects.get(name))
            refs[name] = uri
        video_ref = None
        if job.request.extends is not None:
            video_ref = await self._cached(job_id, INPUT_VIDEO_NAME, objects.get(INPUT_VIDEO_NAME))
        references = tuple(reference_name(n) for n in range(1, job.reference_count + 1))
        return JobInputs(
            image=self.files.image(job_id) if job.has_image else None,
            last_frame=self.files.last_frame(job_id) if job.has_last_frame else None,
            references=tuple(self.files.folder(job_id) / name for name in references),
            video=self.files.input_video(job_id) if job.request.extends is not None else None,
            image_ref=refs.get(IMAGE_NAME),
            last_frame_ref=refs.get(LAST_FRAME_NAME),
            reference_refs=tuple(refs[name] for name in references),
            video_ref=video_ref,
        )

    async def input(self, job: Job, name: str) -> Path:
        """One input file of the job, in this server's cache."""
        path = self.files.folder(job.job_id) / name
        if not path.is_file():
            objects = await self._input_objects(job.job_id)
            await self._cached(job.job_id, name, objects.get(name))
        self.cache.touch(job.job_id)
        return path

    async def _input_objects(self, job_id: str) -> dict[str, str]:
        """The job's input objects by their file name in a job folder (the newest of each)."""
        found: dict[str, str] = {}
        for name in sorted(await self.bucket.names(image_prefix(job_id))):
            label = _LABEL.search(name)
            found[f"{label.group(1)}.jpg" if label else IMAGE_NAME] = name
        for name in sorted(await self.bucket.names(video_prefix(job_id))):
            found[INPUT_VIDEO_NAME] = name
        return found

    async def _cached(self, job_id: str, name: str, object_name: str | None) -> str:
        """Fetch an input into the cache unless it is there; its ``gs://`` address."""
        if object_name is None:
            raise PermanentFault(
                f"the job's input {name} is missing from gs://{self.bucket.bucket_name}; submit the job again",
                kind=ErrorKind.MISSING_IMAGE,
            )
        uri = self.bucket.uri(object_name)
        path = self.files.folder(job_id) / name
        if not path.is_file():
            self.files.ensure(job_id)
            await self.bucket.download(uri, path)
        return uri

    # -- outputs --------------------------------------------------------------------------

    async def put_outputs(self, job: Job, result: GenerationResult, paths: list[Path]) -> None:
        """Make sure every video of a finished job is in the bucket: Veo's already are;
        the others (the simulator's, inline ones) are uploaded under ``veo_outputs/``."""
        for index, path in enumerate(paths, 1):
            if _saved_uri(result, index) is None:
                name = f"{output_prefix(job.job_id)}{video_name(index)}"
                await self.bucket.upload(name, path, "video/mp4", f"store video {index}")

    async def video(self, job: Job, index: int) -> Path:
        """Video ``index`` of a completed job, in this server's cache."""
        video = next(v for v in job.videos if v.index == index)
        path = self.files.folder(job.job_id) / video.filename
        if not path.is_file():
            self.files.ensure(job.job_id)
            await self.bucket.download(self._video_uri(job, index), path)
            await self.trim()
        self.cache.touch(job.job_id)
        return path

    async def zip(self, job: Job) -> Path:
        """The zip of a completed job's videos, built in the cache from the cached videos
        (each streamed from the bucket to a file, then into the zip: never all in memory)."""
        path = self.files.zip(job.job_id)
        if not path.is_file():
            videos = [await self.video(job, v.index) for v in job.videos]
            await anyio.to_thread.run_sync(self.files.build_zip, job.job_id, videos)
            await self.trim()
        self.cache.touch(job.job_id)
        return path

    async def everything(self, job: Job, input_names: Iterable[str]) -> Path:
        """Every file of the job in the cache (for its pictures); its folder."""
        for name in input_names:
            await self.input(job, name)
        for video in job.videos:
            await self.video(job, video.index)
        return self.files.folder(job.job_id)

    def _video_uri(self, job: Job, index: int) -> str:
        saved = self.generator.load_result(job.result) if job.result is not None else None
        uri = _saved_uri(saved, index) if saved is not None else None
        return uri or self.bucket.uri(f"{output_prefix(job.job_id)}{video_name(index)}")

    # -- clean-up -------------------------------------------------------------------------

    async def remove(self, job_id: str) -> int:
        """Delete every object of the job; how many there were."""
        removed = 0
        for prefix in job_prefixes(job_id):
            removed += await self.bucket.delete_prefix(prefix, job_id)
        return removed

    def drop(self, job_id: str) -> None:
        """Forget this server's cached copy of a deleted job."""
        folder = self.files.folder(job_id)
        if folder.exists():
            self.files.remove(job_id)
            event(
                log,
                logging.INFO,
                "cache.dropped",
                "dropped the cached files of a deleted job",
                job_id=job_id,
                path=str(folder),
            )

    async def trim(self) -> None:
        await anyio.to_thread.run_sync(self.cache.trim)


def _input_labels(job: Job) -> list[tuple[str, str]]:
    """The job's input images: (file name in its folder, label of its object)."""
    labels = [(IMAGE_NAME, "")] if job.has_image else []
    if job.has_last_frame:
        labels.append((LAST_FRAME_NAME, "last_frame"))
    return labels + [(reference_name(n), f"reference_{n}") for n in range(1, job.reference_count + 1)]


def _saved_uri(result: GenerationResult, index: int) -> str | None:
    """Where the generator left video ``index`` in Cloud Storage, if it did."""
    if index > len(result.videos):
        return None
    uri = getattr(result.videos[index - 1], "uri", None)
    return uri if isinstance(uri, str) and uri.startswith("gs://") else None
