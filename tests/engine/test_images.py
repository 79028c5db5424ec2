"""Input images in bounded memory: scaled to 4k at most (a JPEG while it decodes), flattened
and scaled a band of rows at a time with the same result as the whole image at once, and
conversions that together never hold more decoded pixels than their budget."""

from __future__ import annotations

import io
import threading
import time
from typing import cast

import pytest
from PIL import Image, ImageChops

from veotui.datadir import images
from veotui.datadir.images import DecodeBudget, convert_image, fitted, flattened


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def noise(size: tuple[int, int], mode: str) -> Image.Image:
    grey = Image.effect_noise(size, 90).convert("L")
    bands = [grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey.transpose(Image.Transpose.FLIP_TOP_BOTTOM)]
    bands.append(grey.point(lambda v: 255 - v))
    rgba = Image.merge("RGBA", bands)
    return rgba if mode == "RGBA" else rgba.convert(mode)


def whole_at_once(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The plain way: flatten the whole image, then scale it."""
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat if size == flat.size else flat.resize(size, Image.Resampling.BICUBIC)


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L", "P", "LA"])
@pytest.mark.parametrize("max_side", [200, 1000])
def test_bands_give_the_same_picture_as_the_whole_image(monkeypatch, mode, max_side):
    monkeypatch.setattr(images, "BAND_PIXELS", 20_000)  # dozens of bands
    image = noise((701, 513), mode)
    size = fitted(image.size, max_side)
    banded = flattened(image, size)
    expected = whole_at_once(image, size)
    assert banded.size == size
    # One (low, high) pair per band: both pictures are flattened to RGB.
    extrema = cast("tuple[tuple[int, int], ...]", ImageChops.difference(banded, expected).getextrema())
    assert max(high for _, high in extrema) <= 1


def test_a_large_image_is_scaled_to_4k_and_turned_upright_after():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned a quarter clockwise
    photo = Image.new("RGB", (6000, 4000), (30, 90, 200))
    out = Image.open(io.BytesIO(convert_image(encode(photo, "JPEG", exif=exif), "photo.jpg")))
    # Decoded at half size (3000 x 2000 keeps 3/4 of 4k), then turned upright.
    assert out.size == (2000, 3000)
    wide = Image.new("RGBA", (8000, 2000), (0, 0, 0, 0))
    out = Image.open(io.BytesIO(convert_image(encode(wide, "PNG"), "wide.png")))
    assert out.size == (3840, 960)
    assert out.getpixel((10, 10)) == (255, 255, 255), "transparency flattened onto white"


def test_a_large_jpeg_is_decoded_scaled_down(monkeypatch):
    seen: list[tuple[int, int]] = []
    real = images.flattened

    def spying(image, size):
        seen.append(image.size)
        return real(image, size)

    monkeypatch.setattr(images, "flattened", spying)
    convert_image(encode(Image.new("RGB", (7000, 5000), (9, 9, 9)), "JPEG"), "big.jpg")
    # The decoder halved it (3500 keeps 3/4 of 4k's 3840): a quarter of the pixels decoded.
    assert seen == [(3500, 2500)]
    seen.clear()
    convert_image(encode(Image.new("RGB", (4000, 3000), (9, 9, 9)), "JPEG"), "4k.jpg")
    assert seen == [(4000, 3000)], "halving would lose too much: decoded whole, then scaled"


def test_small_images_keep_their_size():
    image = Image.new("RGB", (640, 360), (1, 2, 3))
    assert Image.open(io.BytesIO(convert_image(encode(image, "PNG"), "small.png"))).size == (640, 360)


def test_conversions_never_hold_more_than_the_budget_together():
    budget = DecodeBudget(100)
    held = [0]
    most = [0]
    lock = threading.Lock()

    def convert(amount: int) -> None:
        with budget.hold(amount):
            with lock:
                held[0] += min(amount, 100)
                most[0] = max(most[0], held[0])
            time.sleep(0.05)
            with lock:
                held[0] -= min(amount, 100)

    workers = [threading.Thread(target=convert, args=(amount,)) for amount in (60, 60, 30, 30, 500, 10)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not any(worker.is_alive() for worker in workers), "one image larger than the budget gets through alone"
    assert most[0] <= 100
    assert budget.used == 0
