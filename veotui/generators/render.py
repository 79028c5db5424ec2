"""Real, playable H.264 MP4 files for the simulator, drawn with Pillow and encoded with PyAV."""

from __future__ import annotations

import array
import hashlib
import math
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw, ImageFont, ImageOps

from veotui.datadir.files import atomic_path

FPS = 12
#: Small frames keep rendering well under a second per video; they are previews, not art.
#: The size grows with the resolution asked, but 4k (3840x2160) is drawn at 640x360, a
#: sixth of its width, so a simulated 4k video stays a few hundred kilobytes.
WIDTHS = {"720p": 320, "1080p": 480, "4k": 640}


def frame_size(aspect_ratio: str, resolution: str = "720p") -> tuple[int, int]:
    """The simulator's frame size for ``resolution`` (16:9 landscape, 9:16 portrait)."""
    width = WIDTHS.get(resolution, WIDTHS["720p"])
    height = width * 9 // 16
    return (height, width) if aspect_ratio == "9:16" else (width, height)


def render_video(
    target: Path,
    *,
    prompt: str,
    index: int,
    seconds: float,
    aspect_ratio: str = "16:9",
    resolution: str = "720p",
    image_path: Path | None = None,
    seed: int | None = None,
    last_frame_path: Path | None = None,
    reference_paths: tuple[Path, ...] = (),
    extends_path: Path | None = None,
    audio: bool = False,
    enhance_prompt: bool | None = None,
) -> Path:
    """Write an MP4 of ``seconds`` length to ``target`` (under a temporary name, then renamed).
    Frames show the prompt over a moving colour field, or pan across the input image. Each
    mode shows: the last frame given is the video's last frame; an extension's first frame is
    the last frame of the video it continues; reference images sit in a corner; ``audio``
    adds a tone track; the caption says whether the prompt was enhanced."""
    width, height = frame_size(aspect_ratio, resolution)
    digest = hashlib.sha256(f"{prompt}|{index}|{seed}".encode()).digest()
    base_colour = (digest[0], digest[1], digest[2])
    frames = max(1, round(seconds * FPS))
    source = _load_source(image_path, width, height) if image_path else None
    start = _fit(last_video_frame(extends_path), width, height) if extends_path else None
    end = _fit(_open_rgb(last_frame_path), width, height) if last_frame_path else None
    tiles = [_fit(_open_rgb(path), width // 5, height // 5) for path in reference_paths]
    caption = prompt
    if enhance_prompt is not None:
        caption = ("[enhanced] " if enhance_prompt else "[as written] ") + prompt
    lines = textwrap.wrap(caption, width=max(10, width // 7))[:4]
    font = ImageFont.load_default()

    with (
        atomic_path(target, suffix=".mp4") as temp,
        av.open(str(temp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container,
    ):
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "28", "preset": "veryfast"}
        stream.time_base = Fraction(1, FPS)
        sound = container.add_stream("aac", rate=AUDIO_RATE, options={"aac_coder": "fast"}) if audio else None
        for n in range(frames):
            if n == frames - 1 and end is not None:
                frame_image = end.copy()  # exactly the last frame given
            elif n == 0 and start is not None:
                frame_image = start.copy()  # exactly where the continued video stopped
            else:
                frame_image = _frame(n, frames, width, height, base_colour, source, lines, index, font)
                if start is not None:
                    frame_image = Image.blend(start, frame_image, min(1.0, n / max(1, frames // 3)))
                if end is not None:
                    frame_image = Image.blend(frame_image, end, max(0.0, (n - frames * 2 / 3) / (frames / 3)))
                _paste_tiles(frame_image, tiles)
            frame = av.VideoFrame.from_image(frame_image)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            _write_tone(container, sound, seconds, index)
    return target


AUDIO_RATE = 8000


def _write_tone(container: Any, stream: Any, seconds: float, index: int) -> None:
    """A quiet 125 Hz tone as long as the video: 64 samples a period, so every 1024-sample
    frame is the same buffer, computed once."""
    samples_per_frame = 1024
    wave = array.array("f", (0.2 * math.sin(2 * math.pi * i / 64) for i in range(samples_per_frame))).tobytes()
    total = round(seconds * AUDIO_RATE)
    for offset in range(0, total, samples_per_frame):
        count = min(samples_per_frame, total - offset)
        frame = av.AudioFrame(format="fltp", layout="mono", samples=count)
        frame.planes[0].update(wave[: count * 4].ljust(frame.planes[0].buffer_size, b"\0"))
        frame.sample_rate = AUDIO_RATE
        frame.pts = offset
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def video_seconds(path: Path) -> float:
    """How long a video plays, in seconds (its video stream; the container if that says
    nothing). Raises ``ValueError`` for a file that is not a video."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0] if container.streams.video else None
            if stream is not None and stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if stream is not None and stream.frames and stream.average_rate:
                return float(stream.frames / stream.average_rate)
            if container.duration is not None:
                return float(container.duration / av.time_base)
    except (av.FFmpegError, IndexError) as exc:
        raise ValueError(f"{path.name} is not a video: {exc}") from exc
    raise ValueError(f"{path.name} does not say how long it is")


def last_video_frame(path: Path) -> Image.Image:
    """The last frame of a video, as a picture."""
    last = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            last = frame
    if last is None:
        raise ValueError(f"{path.name} has no video frames")
    picture: Image.Image = last.to_image().convert("RGB")
    return picture


def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop to exactly ``width`` x ``height``."""
    return ImageOps.fit(image, (max(1, width), max(1, height)))


def _paste_tiles(image: Image.Image, tiles: list[Image.Image]) -> None:
    """Reference images in the top-right corner, side by side."""
    x = image.width
    for tile in tiles:
        x -= tile.width + 2
        image.paste(tile, (x, 2))


def _load_source(path: Path, width: int, height: int) -> Image.Image:
    with Image.open(path) as opened:
        image = opened.convert("RGB")
        scale = max(width * 1.5 / image.width, height * 1.5 / image.height)
        return image.resize((max(width + 2, int(image.width * scale)), max(height + 2, int(image.height * scale))))


def _frame(
    n: int,
    total: int,
    width: int,
    height: int,
    colour: tuple[int, int, int],
    source: Image.Image | None,
    lines: list[str],
    index: int,
    font: Any,
) -> Image.Image:
    t = n / max(1, total - 1)
    if source is not None:
        x = int((source.width - width) * t)
        y = int((source.height - height) * (0.5 + 0.5 * (t - 0.5)))
        image = source.crop((x, y, x + width, y + height))
    else:
        shade = tuple(int(c * (0.6 + 0.4 * t)) for c in colour)
        image = Image.new("RGB", (width, height), shade)
        draw = ImageDraw.Draw(image)
        radius = min(width, height) // 6
        cx = int(radius + (width - 2 * radius) * t)
        draw.ellipse((cx - radius, height // 2 - radius, cx + radius, height // 2 + radius), fill=(255, 255, 255))
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((8, 8 + row * 12), line, fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
    draw.text((8, height - 16), f"video {index} - frame {n + 1}/{total}", fill=(255, 255, 0), font=font)
    return image
