"""Pictures of a job's videos and inputs for the terminal, cached in the job folder."""

from __future__ import annotations

import os

from PIL import Image, ImageStat

from veotui.datadir.frames import input_picture, video_strip
from veotui.generators.render import render_video


def test_a_strip_of_first_middle_and_last_frames_is_cached(tmp_path):
    first, last = tmp_path / "first.png", tmp_path / "last.png"
    Image.new("RGB", (64, 36), (240, 20, 20)).save(first)
    Image.new("RGB", (64, 36), (20, 20, 240)).save(last)
    video = render_video(
        tmp_path / "generated_video_1.mp4", prompt="p", index=1, seconds=2, image_path=first, last_frame_path=last
    )
    cache = tmp_path / ".thumbnails"
    strip = video_strip(video, cache)
    assert [p.name for p in strip] == [
        "generated_video_1_first.png",
        "generated_video_1_middle.png",
        "generated_video_1_last.png",
    ]
    with Image.open(strip[-1]) as picture:
        blue = ImageStat.Stat(picture.convert("RGB")).mean
        assert blue[2] > 200 and blue[0] < 60  # the video ends on the last frame given
    with Image.open(strip[0]) as picture:
        assert ImageStat.Stat(picture.convert("RGB")).mean[0] > 150

    # A second call reads the cache; a newer video is decoded again.
    stamps = [p.stat().st_mtime_ns for p in strip]
    assert video_strip(video, cache) == strip
    assert [p.stat().st_mtime_ns for p in strip] == stamps
    later = strip[0].stat().st_mtime + 10
    os.utime(video, (later, later))
    video_strip(video, cache)
    assert [p.stat().st_mtime_ns for p in strip] != stamps


def test_an_input_picture_is_a_small_copy(tmp_path):
    big = tmp_path / "reference_1.jpg"
    Image.new("RGB", (2000, 1000), (0, 200, 0)).save(big, "JPEG")
    small = input_picture(big, tmp_path / ".thumbnails")
    with Image.open(small) as picture:
        assert picture.width <= 320 and picture.height <= 180
