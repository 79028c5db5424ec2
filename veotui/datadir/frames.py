"""Pictures of a job for the terminal: a strip of frames (first, middle, last) from each
video, decoded with PyAV, and small copies of the input images. Blocking (run it in a worker
thread); each picture is cached as a PNG in the job folder's ``.thumbnails``, so a second
look costs a file read."""

from __future__ import annotations

from pathlib import Path

import av
from PIL import Image

from veotui.core.job import Job
from veotui.datadir.files import IMAGE_NAME, LAST_FRAME_NAME, THUMBNAILS_DIR, atomic_path, reference_name
from veotui.datadir.privacy import private_dir

#: Big enough for a sharp half-block picture a third of an 80-column screen wide.
THUMBNAIL_SIZE = (320, 180)
POSITIONS = ("first", "middle", "last")

#: (title, [(caption, picture file)]): one row of pictures, such as a video's strip.
PictureRow = tuple[str, list[tuple[str, Path]]]


def input_images(folder: Path, job: Job) -> list[tuple[str, Path]]:
    """The job's input images with a label each, as they lie in its folder."""
    found = []
    if job.has_image:
        found.append(("input image", folder / IMAGE_NAME))
    if job.has_last_frame:
        found.append(("last frame", folder / LAST_FRAME_NAME))
    for number in range(1, job.reference_count + 1):
        found.append((f"reference {number}", folder / reference_name(number)))
    return [(label, path) for label, path in found if path.is_file()]


def job_pictures(folder: Path, job: Job) -> list[PictureRow]:
    """The inputs, then each video's first, middle and last frames, as PNG files cached in
    the job folder. Blocking: decodes videos."""
    cache = folder / THUMBNAILS_DIR
    rows: list[PictureRow] = []
    inputs = [(label, input_picture(path, cache)) for label, path in input_images(folder, job)]
    if inputs:
        rows.append(("Inputs", inputs))
    for video in job.videos:
        path = folder / video.filename
        if path.is_file():
            rows.append((f"Video {video.index}", list(zip(POSITIONS, video_strip(path, cache), strict=True))))
    return rows


def video_strip(video: Path, cache: Path, size: tuple[int, int] = THUMBNAIL_SIZE) -> list[Path]:
    """The first, middle and last frames of ``video`` as PNG files in ``cache``."""
    targets = [cache / f"{video.stem}_{position}.png" for position in POSITIONS]
    mtime = video.stat().st_mtime
    if all(t.is_file() and t.stat().st_mtime >= mtime for t in targets):
        return targets
    frames = _first_middle_last(video)
    private_dir(cache)
    for frame, target in zip(frames, targets, strict=True):
        _save(frame, target, size)
    return targets


def input_picture(image: Path, cache: Path, size: tuple[int, int] = THUMBNAIL_SIZE) -> Path:
    """A small copy of an input image (they may be large photographs)."""
    target = cache / f"input_{image.stem}.png"
    if target.is_file() and target.stat().st_mtime >= image.stat().st_mtime:
        return target
    private_dir(cache)
    with Image.open(image) as picture:
        _save(picture.convert("RGB"), target, size)
    return target


def _first_middle_last(video: Path) -> list[Image.Image]:
    """Decodes the frames in order, keeping only the three wanted: the videos are seconds
    long, and seeking in H.264 lands on keyframes, not on exact frames."""
    with av.open(str(video)) as container:
        total = container.streams.video[0].frames
    if not total:  # the container does not say: count them
        with av.open(str(video)) as container:
            total = sum(1 for _ in container.decode(video=0))
    if not total:
        raise ValueError(f"{video.name} has no video frames")
    wanted = [0, total // 2, total - 1]
    kept: dict[int, Image.Image] = {}
    with av.open(str(video)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number in wanted:
                kept[number] = frame.to_image()
            last = (number, frame)
    if total - 1 not in kept:  # fewer frames than the container said
        kept[total - 1] = last[1].to_image()
    return [kept.get(n) or kept[max(kept)] for n in wanted]


def _save(picture: Image.Image, target: Path, size: tuple[int, int]) -> None:
    picture = picture.copy()
    picture.thumbnail(size)
    with atomic_path(target, suffix=".png") as temp:
        picture.save(temp, "PNG")
