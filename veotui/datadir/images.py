"""Input images as JPEG for Veo, in bounded memory.

Veo makes at most 4k video (3840 pixels on the long side), so a larger image is scaled down
to that: a JPEG while it is decoded (Pillow's ``draft``: the decoder itself scales by 1/2,
1/4 or 1/8, for almost nothing), any other format after decoding, a band of rows at a time,
so that beside the decoded image only the output exists whole (flattening an RGBA image
the plain way makes three more copies of it). PNG, WebP, GIF and AVIF cannot be decoded
smaller, so conversions also take turns: together they hold at most ``DECODE_BUDGET`` bytes
of decoded pixels (an image alone always gets through: at most 50 million pixels of 4
bytes), and the backend runs at most ``image_workers`` of them at once.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from veotui.core.errors import InvalidRequest, TooLarge
from veotui.datadir.files import MAX_IMAGE_BYTES

if TYPE_CHECKING:
    from PIL import Image

#: Refuse images whose pixel count could exhaust memory when decoded.
MAX_IMAGE_PIXELS = 50_000_000
#: The long side of Veo's largest video (4k); a larger image is scaled down to it.
MAX_SIDE = 3840
#: Bytes of decoded pixels all conversions may hold at once.
DECODE_BUDGET = 256 * 1024 * 1024
#: Pixels of the decoded image handled at once while flattening and scaling.
BAND_PIXELS = 2_000_000
WHITE = (255, 255, 255)
JPEG_QUALITY = 92
#: Bicubic scaling looks this many source pixels (times the scale) either side of each
#: output pixel. (Lanczos looks 3 and costs twice the time, for a difference Veo never sees.)
_BICUBIC_REACH = 2
#: A JPEG is decoded scaled down (1/2, 1/4 or 1/8) as long as it keeps this share of the
#: largest side Veo needs: less work and memory for a barely smaller picture.
JPEG_DRAFT_SHARE = 0.75
#: Bytes a pixel takes once Pillow has decoded it, by mode (4 for every other mode).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
#: EXIF orientation -> the transpose that shows the image upright.
_ORIENTATIONS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270"}
_ORIENTATIONS |= {7: "TRANSVERSE", 8: "ROTATE_90"}
_EXIF_ORIENTATION = 0x0112


class DecodeBudget:
    """Bytes of decoded pixels held at once, across the threads that convert."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        amount = min(amount, self.total)  # alone, any image gets through
        with self._changed:
            self._changed.wait_for(lambda: self.used + amount <= self.total)
            self.used += amount
        try:
            yield
        finally:
            with self._changed:
                self.used -= amount
                self._changed.notify_all()


_BUDGET = DecodeBudget(DECODE_BUDGET)


def check_image(data: bytes, name: str = "image", size: int | None = None) -> None:
    """The rules every input image meets, from its header alone: at most 10 MB, not empty,
    an image Pillow reads, not too many pixels. The error names the file. ``size``: the
    file's size, when ``data`` is only its start."""
    with _opened(data, name, len(data) if size is None else size):
        pass


def convert_image(
    data: bytes, name: str = "image", *, max_side: int = MAX_SIDE, budget: DecodeBudget = _BUDGET
) -> bytes:
    """Any common image (PNG, JPEG, WebP, GIF, AVIF, ...) as JPEG bytes, at most ``max_side``
    pixels on its long side: EXIF orientation applied, transparency flattened onto white.
    The error names the file and what is wrong."""
    from PIL import Image

    with _opened(data, name, len(data)) as image:
        if image.format in ("JPEG", "MPO"):
            # The decoder picks the smallest scale that keeps at least this size.
            image.draft("RGB", fitted(image.size, int(max_side * JPEG_DRAFT_SHARE)))
        size = fitted(image.size, max_side)
        decoded = image.size[0] * image.size[1] * _PIXEL_BYTES.get(image.mode, 4)
        with budget.hold(decoded + size[0] * size[1] * 4 + 3 * BAND_PIXELS * 4):
            image.load()
            orientation = image.getexif().get(_EXIF_ORIENTATION)
            picture = flattened(image, size)
            image.close()  # frees the decoded pixels now, inside the budget
        method = _ORIENTATIONS.get(orientation or 1)
        if method is not None:
            picture = picture.transpose(getattr(Image.Transpose, method))
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=JPEG_QUALITY)
        return out.getvalue()


@contextmanager
def _opened(data: bytes, name: str, size: int) -> Iterator[Image.Image]:
    """The image, opened after the size checks; whatever goes wrong reading it, in or out
    of the ``with`` block, is an InvalidRequest that names the file."""
    # Pillow loads here: the client verbs import this module and never open an image.
    from PIL import Image, UnidentifiedImageError

    if size > MAX_IMAGE_BYTES:
        raise TooLarge(f"{name} is {size / 1048576:.1f} MB; input images may be at most 10 MB")
    if not data:
        raise InvalidRequest(f"{name} is empty; expected an image (PNG, JPEG, WebP, GIF, AVIF, ...)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InvalidRequest(_too_many_pixels(name, f"{width}x{height}"))
            yield image
    except InvalidRequest:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidRequest(_too_many_pixels(name, "over 178 million pixels")) from exc
    except UnidentifiedImageError as exc:
        raise InvalidRequest(f"{name} is not an image veotui can read (PNG, JPEG, WebP, GIF, AVIF, ...)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidRequest(f"{name} is damaged or truncated: {exc}") from exc


def fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled down (never up) so its long side is at most ``max_side``."""
    width, height = size
    scale = max(width, height) / max_side
    if scale <= 1:
        return size
    return max(1, round(width / scale)), max(1, round(height / scale))


def flattened(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` as RGB of ``size``, transparency flattened onto white, made a band of rows
    at a time. Flattening is linear, so flattening then scaling equals scaling (with
    premultiplied alpha) then flattening; each band carries the rows the filter reaches beyond
    it, so the result is the same as scaling the whole image at once."""
    from PIL import Image

    width, height = image.size
    out = Image.new("RGB", size, WHITE)
    scale = height / size[1]
    resizing = size != image.size
    reach = math.ceil(_BICUBIC_REACH * max(scale, 1.0)) + 2 if resizing else 0
    transparent = image.mode in ("RGBA", "LA", "PA", "P", "RGBa", "La") or "transparency" in image.info
    rows = max(1, int(BAND_PIXELS / width / max(scale, 1.0)))
    for top in range(0, size[1], rows):
        bottom = min(size[1], top + rows)
        source_top = max(0, math.floor(top * scale) - reach)
        source_bottom = min(height, math.ceil(bottom * scale) + reach)
        band = _flat(image.crop((0, source_top, width, source_bottom)), transparent)
        if resizing:
            box = (0.0, top * scale - source_top, float(width), bottom * scale - source_top)
            band = band.resize((size[0], bottom - top), Image.Resampling.BICUBIC, box=box)
        out.paste(band, (0, top))
    return out


def _flat(band: Image.Image, transparent: bool) -> Image.Image:
    from PIL import Image

    if transparent:
        rgba = band.convert("RGBA")
        flat = Image.new("RGB", rgba.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return band if band.mode == "RGB" else band.convert("RGB")


def _too_many_pixels(name: str, size: str) -> str:
    return f"{name} has too many pixels to decode safely ({size}); images may have at most {MAX_IMAGE_PIXELS:,}"
