"""Real, playable H.264 MP4 files for the simulator, drawn with Pillow and encoded with PyAV."""

from __future__ import annotations

import hashlib
import textwrap
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

from veotui.files import atomic_path

FPS = 12
#: Small frames keep rendering well under a second per video; they are previews, not art.
SIZES = {"16:9": (320, 180), "9:16": (180, 320)}


def render_video(
    target: Path,
    *,
    prompt: str,
    index: int,
    seconds: int,
    aspect_ratio: str = "16:9",
    image_path: Path | None = None,
    seed: int | None = None,
) -> Path:
    """Write an MP4 of ``seconds`` length to ``target`` (under a temporary name, then renamed).
    Frames show the prompt over a moving colour field, or pan across the input image."""
    width, height = SIZES.get(aspect_ratio, SIZES["16:9"])
    digest = hashlib.sha256(f"{prompt}|{index}|{seed}".encode()).digest()
    base_colour = (digest[0], digest[1], digest[2])
    frames = max(1, int(seconds * FPS))
    source = _load_source(image_path, width, height) if image_path else None
    lines = textwrap.wrap(prompt, width=max(10, width // 7))[:4]
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
        for n in range(frames):
            frame_image = _frame(n, frames, width, height, base_colour, source, lines, index, font)
            frame = av.VideoFrame.from_image(frame_image)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return target


def _load_source(path: Path, width: int, height: int) -> Image.Image:
    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = max(width * 1.5 / image.width, height * 1.5 / image.height)
        return image.resize((max(width + 2, int(image.width * scale)), max(height + 2, int(image.height * scale))))


def _frame(n, total, width, height, colour, source, lines, index, font) -> Image.Image:
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
