"""Cloud Storage for the ``veo`` generator: input images go up, generated videos come down.

Layout in the bucket::

    temp_images/<job_id>_<timestamp>[_<input>].jpg   the job's input images, passed to Veo by URI
    temp_videos/<job_id>_<timestamp>.mp4     the video an extension continues
    veo_outputs/<job_id>/...                 where Veo writes the job's videos
    sim_operations/<job_id>/<id>.json        the simulator's operations, when the bucket holds
                                             a fleet's files (no shared data directory)

google-cloud-storage is blocking, so every call runs in a worker thread; each has a
300 s timeout. Its exceptions become the generator faults the engine
understands (transient: retried with backoff; permanent: the job fails with a sentence).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import anyio
import requests.exceptions
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import storage

from veotui.core.errors import ErrorKind
from veotui.core.job import utcnow
from veotui.datadir.files import atomic_file
from veotui.generators.base import GeneratorFault, PermanentFault, TransientFault
from veotui.logs import event

T = TypeVar("T")
log = logging.getLogger(__name__)
GCS_TIMEOUT_SECONDS = 300.0
IMAGES_PREFIX = "temp_images/"
VIDEOS_PREFIX = "temp_videos/"
OUTPUTS_PREFIX = "veo_outputs/"
SIM_OPERATIONS_PREFIX = "sim_operations/"

#: Cloud Storage calls by (operation, outcome), since this process started (``/metrics``).
_operations: Counter[tuple[str, str]] = Counter()
_operations_lock = threading.Lock()


def count_gcs(op: str, outcome: str) -> None:
    with _operations_lock:
        _operations[(op, outcome)] += 1


def gcs_operations() -> list[tuple[tuple[str, str], int]]:
    """Every (operation, outcome) counted so far, sorted."""
    with _operations_lock:
        return sorted(_operations.items())


def image_prefix(job_id: str) -> str:
    """Every input image of a job (a retry uploads a new one) starts with this."""
    return f"{IMAGES_PREFIX}{job_id}_"


def video_prefix(job_id: str) -> str:
    """The video an extension continues (a copy: the source job may be deleted first)."""
    return f"{VIDEOS_PREFIX}{job_id}_"


def output_prefix(job_id: str) -> str:
    return f"{OUTPUTS_PREFIX}{job_id}/"


def sim_operations_prefix(job_id: str) -> str:
    return f"{SIM_OPERATIONS_PREFIX}{job_id}/"


def job_prefixes(job_id: str) -> tuple[str, ...]:
    """Every place a job's objects live: its inputs, the simulator's operations, its outputs."""
    return (image_prefix(job_id), video_prefix(job_id), sim_operations_prefix(job_id), output_prefix(job_id))


def split_gs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b.mp4`` -> ``("bucket", "a/b.mp4")``."""
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        raise PermanentFault(f"{uri!r} is not a gs://bucket/object address", kind=ErrorKind.BAD_VIDEO_URI)
    bucket, _, name = uri[5:].partition("/")
    return bucket, name


class Bucket:
    """The job files of one bucket. Calls are async; the client works in threads."""

    def __init__(self, client: storage.Client, bucket: str, timeout: float = GCS_TIMEOUT_SECONDS) -> None:
        self.client = client
        self.bucket_name = bucket
        self.timeout = timeout

    @classmethod
    def connect(
        cls,
        bucket: str,
        env: Mapping[str, str],
        *,
        project: str | None,
        credentials: Credentials | None,
    ) -> Bucket:
        """A client for ``bucket``: the emulator at ``STORAGE_EMULATOR_HOST`` when set
        (anonymous, as the emulator expects), else Google with ``credentials``."""
        emulator = env.get("STORAGE_EMULATOR_HOST")
        if emulator:
            if not emulator.startswith(("http://", "https://")):
                emulator = f"http://{emulator}"
            client = storage.Client(
                project=project or "veotui-emulator",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": emulator},
            )
        else:
            client = storage.Client(project=project, credentials=credentials)
        return cls(client, bucket)

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{name}"

    def output_uri(self, job_id: str) -> str:
        return self.uri(output_prefix(job_id))

    # -- the generator's operations -------------------------------------------------------

    async def upload_image(self, job_id: str, path: Path, label: str = "") -> str:
        """Upload one input image; ``label`` ("last_frame", "reference_1", ...) tells the
        job's images apart."""
        suffix = f"_{label}" if label else ""
        name = f"{image_prefix(job_id)}{utcnow():%Y%m%d%H%M%S}{suffix}.jpg"
        return await self._upload(name, path, "image/jpeg", f"the input {label or 'image'}")

    async def upload_video(self, job_id: str, path: Path) -> str:
        name = f"{video_prefix(job_id)}{utcnow():%Y%m%d%H%M%S}.mp4"
        return await self._upload(name, path, "video/mp4", "the video to extend")

    async def upload(self, name: str, path: Path, content_type: str, what: str) -> str:
        """Upload a file as the object ``name``; its ``gs://`` address."""
        return await self._upload(name, path, content_type, what)

    async def write_json(self, name: str, record: Mapping[str, object]) -> None:
        def write() -> None:
            blob = self.client.bucket(self.bucket_name).blob(name)
            blob.upload_from_string(json.dumps(record), content_type="application/json", timeout=self.timeout)

        await self._run(f"write {self.uri(name)}", write, op="upload")

    async def read_json(self, name: str) -> dict[str, object] | None:
        """The JSON object stored as ``name``; None when there is none."""

        def read() -> dict[str, object] | None:
            try:
                data = self.client.bucket(self.bucket_name).blob(name).download_as_bytes(timeout=self.timeout)
            except gexc.NotFound:
                return None
            record = json.loads(data)
            return record if isinstance(record, dict) else None

        return await self._run(f"read {self.uri(name)}", read, op="download")

    async def _upload(self, name: str, path: Path, content_type: str, what: str) -> str:
        def upload() -> None:
            blob = self.client.bucket(self.bucket_name).blob(name)
            blob.upload_from_filename(str(path), content_type=content_type, timeout=self.timeout)

        await self._run(f"upload {what} to {self.uri(name)}", upload, op="upload")
        return self.uri(name)

    async def download(self, uri: str, target: Path) -> None:
        """Stream the object at ``uri`` into ``target``: written under a temporary name,
        renamed into place when whole."""
        bucket, name = split_gs_uri(uri)

        def download() -> None:
            with atomic_file(target) as handle:
                self.client.bucket(bucket).blob(name).download_to_file(handle, timeout=self.timeout)

        await self._run(f"download {uri}", download, op="download")

    async def delete_prefix(self, prefix: str, job_id: str | None = None) -> int:
        """Delete every object under ``prefix``; an object already gone is fine. Each
        object's outcome is logged."""

        def delete() -> int:
            removed = 0
            for blob in self.client.list_blobs(self.bucket_name, prefix=prefix, timeout=self.timeout):
                uri = self.uri(blob.name)
                try:
                    blob.delete(timeout=self.timeout)
                except gexc.NotFound:
                    outcome = "already gone"
                except Exception as exc:
                    count_gcs("delete", "error")
                    event(
                        log,
                        logging.WARNING,
                        "cleanup.object",
                        "could not delete %s: %s",
                        uri,
                        exc,
                        job_id=job_id,
                        uri=uri,
                        outcome="error",
                    )
                    raise
                else:
                    outcome = "deleted"
                    removed += 1
                count_gcs("delete", "ok")
                event(
                    log, logging.INFO, "cleanup.object", "%s: %s", uri, outcome, job_id=job_id, uri=uri, outcome=outcome
                )
            return removed

        return await self._run(f"delete {self.uri(prefix)}*", delete, op="list")

    async def names(self, prefix: str) -> list[str]:
        def names() -> list[str]:
            return [b.name for b in self.client.list_blobs(self.bucket_name, prefix=prefix, timeout=self.timeout)]

        return await self._run(f"list {self.uri(prefix)}*", names, op="list")

    def check_access(self) -> str:
        """For ``veotui doctor`` (blocking): the bucket exists and this account may write
        and delete objects in it. Raises :class:`GeneratorFault` with a sentence."""
        name = f"{IMAGES_PREFIX}veotui-doctor-{utcnow():%Y%m%d%H%M%S%f}.txt"
        try:
            bucket = self.client.get_bucket(self.bucket_name, timeout=60)
            blob = bucket.blob(name)
            blob.upload_from_string(b"veotui doctor write test", timeout=60)
            blob.delete(timeout=60)
        except Exception as exc:
            raise storage_fault(exc, f"write to gs://{self.bucket_name}") from exc
        return f"gs://{self.bucket_name} exists; writing and deleting objects works"

    def close(self) -> None:
        self.client.close()

    async def _run(self, what: str, call: Callable[[], T], *, op: str) -> T:
        try:
            result = await anyio.to_thread.run_sync(call)
        except GeneratorFault:
            count_gcs(op, "error")
            raise
        except Exception as exc:
            count_gcs(op, "error")
            raise storage_fault(exc, what) from exc
        count_gcs(op, "ok")
        return result


def storage_fault(exc: Exception, what: str) -> GeneratorFault:
    """A google-cloud-storage exception as a generator fault with an actionable sentence."""
    if isinstance(exc, (gexc.TooManyRequests, gexc.ServerError, gexc.RetryError)):
        return TransientFault(f"Cloud Storage could not {what} for now ({_short(exc)})")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, TimeoutError)):
        return TransientFault(f"Cloud Storage could not {what}: the connection failed or timed out ({exc})")
    if isinstance(exc, gexc.NotFound):
        return PermanentFault(
            f"Cloud Storage could not {what}: not found ({_short(exc)}). Check that the bucket in "
            "VEOTUI_GCS_BUCKET exists and that nothing else deletes veotui's files.",
            kind=ErrorKind.STORAGE_NOT_FOUND,
        )
    if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized)):
        return PermanentFault(
            f"Cloud Storage refused to {what} ({_short(exc)}). Grant this account the Storage Object "
            "Admin role (roles/storage.objectAdmin) on the bucket; `veotui doctor` checks it.",
            kind=ErrorKind.STORAGE_PERMISSION,
        )
    return PermanentFault(f"Cloud Storage could not {what}: {exc}", kind=ErrorKind.STORAGE)


def _short(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    code = getattr(exc, "code", None)
    return f"{int(code)} {message}" if code else message
