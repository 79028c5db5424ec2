import io
import zipfile

import av
import pytest
from PIL import Image

from veotui.core.errors import InvalidRequest, TooLarge
from veotui.datadir.files import MAX_IMAGE_BYTES, JobFiles, video_name, write_atomic
from veotui.datadir.images import convert_image
from veotui.generators.render import render_video


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decoded(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    return image


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "BMP", "TIFF", "JPEG", "AVIF"])
def test_common_formats_become_jpeg(fmt):
    image = Image.new("RGB", (64, 32), (200, 30, 30))
    out = decoded(convert_image(encode(image, fmt), f"red.{fmt.lower()}"))
    assert out.size == (64, 32)
    assert out.mode == "RGB"


def test_transparency_is_flattened_onto_white():
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    out = decoded(convert_image(encode(image, "PNG"), "clear.png"))
    pixel = out.getpixel((4, 4))
    assert isinstance(pixel, tuple) and all(channel > 245 for channel in pixel)
    palette = Image.new("P", (8, 8), 0)
    palette.info["transparency"] = 0
    assert decoded(convert_image(encode(palette, "PNG", transparency=0), "p.png")).mode == "RGB"


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = decoded(convert_image(encode(image, "JPEG", exif=exif), "turned.jpg"))
    assert out.size == (20, 40)


def test_errors_name_the_file_and_the_problem():
    with pytest.raises(InvalidRequest, match="notes.txt is not an image"):
        convert_image(b"hello, I am text", "notes.txt")
    with pytest.raises(InvalidRequest, match="empty.png is empty"):
        convert_image(b"", "empty.png")
    whole = encode(Image.new("RGB", (300, 300), (1, 2, 3)), "PNG")
    with pytest.raises(InvalidRequest, match="cut.png is damaged or truncated"):
        convert_image(whole[: len(whole) // 2], "cut.png")
    with pytest.raises(TooLarge, match="big.png is 10.0 MB; input images may be at most 10 MB"):
        convert_image(b"\x89PNG" + bytes(MAX_IMAGE_BYTES), "big.png")


def test_a_decompression_bomb_is_refused_without_decoding_it():
    bomb = encode(Image.new("1", (20000, 20000)), "PNG")  # tiny file, 400 megapixels
    assert len(bomb) < 1_000_000
    with pytest.raises(InvalidRequest, match="bomb.png has too many pixels to decode safely"):
        convert_image(bomb, "bomb.png")
    wide = encode(Image.new("1", (10000, 6000)), "PNG")  # under Pillow's limit, over veotui's
    with pytest.raises(InvalidRequest, match=r"wide.png has too many pixels to decode safely \(10000x6000\)"):
        convert_image(wide, "wide.png")


def test_zip_stores_the_videos_and_leaves_no_partial_file(tmp_path):
    files = JobFiles(tmp_path / "temp_downloads")
    folder = files.create("j1", b"jpeg bytes")
    assert (folder / "uploaded_image.jpg").read_bytes() == b"jpeg bytes"
    videos = []
    for n in (1, 2):
        path = files.folder("j1") / video_name(n)
        path.write_bytes(bytes([n]) * 1000)
        videos.append(path)
    target = files.build_zip("j1", videos)
    with zipfile.ZipFile(target) as archive:
        assert archive.namelist() == ["generated_video_1.mp4", "generated_video_2.mp4"]
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
        assert archive.read("generated_video_2.mp4") == bytes([2]) * 1000
    assert sorted(p.name for p in folder.iterdir()) == [
        "all_videos.zip",
        "generated_video_1.mp4",
        "generated_video_2.mp4",
        "uploaded_image.jpg",
    ]
    files.remove_outputs("j1")
    assert [p.name for p in folder.iterdir()] == ["uploaded_image.jpg"]


def test_a_failed_write_leaves_neither_file_nor_temp(tmp_path):
    class Boom(Exception):
        pass

    files = JobFiles(tmp_path)
    files.ensure("j2")
    missing = tmp_path / "job_j2" / "generated_video_1.mp4"
    with pytest.raises(FileNotFoundError):
        files.build_zip("j2", [missing])
    assert list((tmp_path / "job_j2").iterdir()) == []


def test_a_job_without_inputs_gets_no_folder_until_it_has_files(tmp_path):
    files = JobFiles(tmp_path)
    files.create("bare", None)
    assert not (tmp_path / "job_bare").exists()
    assert files.ensure("bare").is_dir()


def test_sweep_removes_orphan_folders_and_partials(tmp_path):
    files = JobFiles(tmp_path)
    files.ensure("known")
    files.ensure("orphan")
    (tmp_path / "job_known" / ".partial-abc").write_bytes(b"half")
    asked: list[set[str]] = []

    def known(ids):
        asked.append(set(ids))
        return {"known"} & set(ids)

    assert files.sweep(known) == ["orphan"]
    assert asked == [{"known", "orphan"}]  # only the folders on disk are looked up
    assert [p.name for p in tmp_path.iterdir()] == ["job_known"]
    assert list((tmp_path / "job_known").iterdir()) == []


@pytest.mark.parametrize(("aspect", "size"), [("16:9", (320, 180)), ("9:16", (180, 320))])
def test_the_simulator_renders_playable_h264(tmp_path, aspect, size):
    target = render_video(tmp_path / "v.mp4", prompt="a red kite", index=1, seconds=4, aspect_ratio=aspect)
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == size
        frames = sum(1 for _ in container.decode(stream))
    assert frames == 48
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_the_simulator_pans_over_an_input_image(tmp_path):
    image = tmp_path / "in.jpg"
    Image.new("RGB", (640, 480), (10, 200, 10)).save(image)
    target = render_video(tmp_path / "v.mp4", prompt="p", index=2, seconds=4, image_path=image)
    with av.open(str(target)) as container:
        first = next(container.decode(video=0)).to_image()
    r, g, b = first.getpixel((160, 90))
    assert g > 150 and r < 80  # the frame shows the green input image


def test_write_atomic_replaces_whole(tmp_path):
    path = tmp_path / "f"
    write_atomic(path, b"one")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
