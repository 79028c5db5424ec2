"""Job folders, input images and the zip of a job's videos.

Every file is written under a temporary name and renamed into place, so a crash never
leaves a half-written image, video or zip behind a real name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from veotui.datadir.privacy import private_dir

if TYPE_CHECKING:
    pass

MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_NAME = "uploaded_image.jpg"
LAST_FRAME_NAME = "last_frame.jpg"
INPUT_VIDEO_NAME = "input_video.mp4"
#: Pictures of a job's videos for the TUI, made on demand (see veotui.datadir.frames).
THUMBNAILS_DIR = ".thumbnails"
ZIP_NAME = "all_videos.zip"
TEMP_PREFIX = ".partial-"


def video_name(index: int) -> str:
    return f"generated_video_{index}.mp4"


def reference_name(number: int) -> str:
    return f"reference_{number}.jpg"


def input_names(reference_count: int = 3) -> set[str]:
    """The files a job is submitted with; a retry sends them again, so they stay."""
    return {IMAGE_NAME, LAST_FRAME_NAME, INPUT_VIDEO_NAME, *(reference_name(n) for n in range(1, reference_count + 1))}


class JobFiles:
    """The layout under ``<data>/temp_downloads``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(root)

    def folder(self, job_id: str) -> Path:
        return self.root / f"job_{job_id}"

    def image(self, job_id: str) -> Path:
        return self.folder(job_id) / IMAGE_NAME

    def zip(self, job_id: str) -> Path:
        return self.folder(job_id) / ZIP_NAME

    def last_frame(self, job_id: str) -> Path:
        return self.folder(job_id) / LAST_FRAME_NAME

    def reference(self, job_id: str, number: int) -> Path:
        return self.folder(job_id) / reference_name(number)

    def input_video(self, job_id: str) -> Path:
        return self.folder(job_id) / INPUT_VIDEO_NAME

    def thumbnails(self, job_id: str) -> Path:
        return self.folder(job_id) / THUMBNAILS_DIR

    def ensure(self, job_id: str) -> Path:
        """The job's folder, made if it is not there yet (when the first file comes)."""
        folder = self.folder(job_id)
        private_dir(folder)
        return folder

    def create(
        self,
        job_id: str,
        jpeg: bytes | None,
        *,
        last_frame: bytes | None = None,
        references: tuple[bytes, ...] = (),
        video: Path | None = None,
    ) -> Path:
        """The job's folder with its inputs: the image, the last frame, the reference
        images (JPEG bytes) and a copy of the video it extends."""
        folder = self.folder(job_id)
        if jpeg is None and last_frame is None and not references and video is None:
            return folder  # nothing to keep: the folder appears with the first file
        private_dir(folder)
        if jpeg is not None:
            write_atomic(folder / IMAGE_NAME, jpeg)
        if last_frame is not None:
            write_atomic(folder / LAST_FRAME_NAME, last_frame)
        for number, data in enumerate(references, 1):
            write_atomic(folder / reference_name(number), data)
        if video is not None:
            copy_atomic(video, folder / INPUT_VIDEO_NAME)
        return folder

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def remove_outputs(self, job_id: str) -> None:
        """Drop generated videos, their pictures and the zip; keep the inputs (a retry
        sends them again)."""
        folder = self.folder(job_id)
        if not folder.is_dir():
            return
        keep = input_names()
        for path in folder.iterdir():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.name not in keep:
                path.unlink(missing_ok=True)

    def job_ids_on_disk(self) -> set[str]:
        return {p.name.removeprefix("job_") for p in self.root.glob("job_*") if p.is_dir()}

    def sweep(self, known: Callable[[Iterable[str]], set[str]], older_than: float | None = None) -> list[str]:
        """Remove folders of jobs the store does not know (``known`` says which of the
        ids given it knows) and leftover partial files; return the ids of the removed
        folders. The cost follows the folders on disk, not the jobs in the store.
        ``older_than``: leave alone what changed within that many seconds (a directory
        shared by a fleet: another server may be writing it)."""
        removed = []
        on_disk = self.job_ids_on_disk()
        for job_id in on_disk - known(on_disk):
            if older_than is not None and _changed_within(self.folder(job_id), older_than):
                continue
            self.remove(job_id)
            removed.append(job_id)
        for partial in self.root.glob(f"job_*/{TEMP_PREFIX}*"):
            if older_than is not None and _changed_within(partial, older_than):
                continue
            partial.unlink(missing_ok=True)
        return removed

    def build_zip(self, job_id: str, videos: list[Path]) -> Path:
        """Zip the videos (stored, not deflated: MP4 does not compress)."""
        target = self.zip(job_id)
        with atomic_file(target) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
            for video in videos:
                archive.write(video, arcname=video.name)
        return target


@contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``target``, renamed onto it when the block ends without an
    error and removed otherwise: ``target`` appears whole or not at all. The sweep at start
    removes what a crash leaves (the ``.partial-`` prefix)."""
    fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=target.parent)
    os.close(fd)
    temp = Path(temp_name)
    try:
        yield temp
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(target: Path, *, durable: bool = False) -> Iterator[BinaryIO]:
    """:func:`atomic_path` as an open binary file; ``durable`` fsyncs before the rename."""
    with atomic_path(target) as temp, temp.open("wb") as handle:
        yield handle
        if durable:
            handle.flush()
            os.fsync(handle.fileno())


def write_atomic(path: Path, data: bytes) -> None:
    with atomic_file(path, durable=True) as handle:
        handle.write(data)


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy a file so that ``target`` appears whole or not at all."""
    private_dir(target.parent)
    with atomic_file(target) as out, source.open("rb") as src:
        shutil.copyfileobj(src, out, 1024 * 1024)
    return target


def _changed_within(path: Path, seconds: float) -> bool:
    """Whether ``path`` (a folder: or anything in it) changed within ``seconds``."""
    limit = time.time() - seconds
    try:
        if path.stat().st_mtime > limit:
            return True
        return path.is_dir() and any(child.stat().st_mtime > limit for child in path.iterdir())
    except OSError:
        return True  # vanished or unreadable meanwhile: someone is at work there
