"""Sweeps in the core: the cross product of ``--vary`` values, the prompt's placeholders,
the refusals, and the captions that say how a group's jobs differ; and a group's zip made a
chunk at a time."""

from __future__ import annotations

import io
import zipfile

import pytest

from veotui.core.errors import InvalidRequest
from veotui.core.request import JobRequest
from veotui.core.sweep import MAX_SWEEP_JOBS, Vary, expand, placeholders, varying_values
from veotui.datadir.files import zip_stream


def test_the_cross_product_fills_placeholders_and_sets_fields():
    jobs = expand(
        {"prompt": "a {animal} in {place}", "model": "veo-3.1-generate-001"},
        [
            Vary.parse("animal=fox, owl"),
            Vary.parse("place=snow"),
            Vary.parse("model=veo-3.1-fast-generate-001,veo-3.1-lite-generate-001"),
        ],
    )
    assert [(j["prompt"], j["model"]) for j in jobs] == [
        ("a fox in snow", "veo-3.1-fast-generate-001"),
        ("a fox in snow", "veo-3.1-lite-generate-001"),
        ("a owl in snow", "veo-3.1-fast-generate-001"),
        ("a owl in snow", "veo-3.1-lite-generate-001"),
    ]
    assert "animal" not in jobs[0] and "place" not in jobs[0]
    assert placeholders("{a} {b} {a} {not a name} {{x}}") == ["a", "b", "x"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("seed", "NAME=V1,V2"),
        ("=1,2", "NAME=V1,V2"),
        ("se ed=1", "letters"),
        ("seed=1,,2", "non-empty"),
        ("seed=1,1", "given twice"),
        ("group=a,b", "cannot be varied"),
        ("user=a,b", "cannot be varied"),
    ],
)
def test_a_bad_vary_is_refused_naming_it(text, words):
    with pytest.raises(InvalidRequest, match=words):
        Vary.parse(text)


def test_expand_refuses_what_it_cannot_fill():
    with pytest.raises(InvalidRequest, match=r"uses \{animal\} but no --vary animal"):
        expand({"prompt": "a {animal}"}, [Vary.parse("seed=1,2")])
    with pytest.raises(InvalidRequest, match="colour: not a job field"):
        expand({"prompt": "p"}, [Vary.parse("colour=red")])
    with pytest.raises(InvalidRequest, match="seed is given twice"):
        expand({"prompt": "p"}, [Vary.parse("seed=1"), Vary.parse("seed=2")])
    many = ",".join(str(n) for n in range(MAX_SWEEP_JOBS + 1))
    with pytest.raises(InvalidRequest, match=f"makes {MAX_SWEEP_JOBS + 1} jobs"):
        expand({"prompt": "p"}, [Vary.parse(f"seed={many}")])


def test_captions_name_only_what_differs():
    requests = [
        JobRequest(prompt="a red fox in the snow at dawn", seed=1),
        JobRequest(prompt="a red fox in the rain at dawn", seed=2),
        JobRequest(prompt="a red fox in the fog at dawn", seed=2, model="veo-3.1-fast-generate-001"),
    ]
    assert varying_values(requests) == [
        "model=veo-3.1-generate-001 · seed=1 · snow",
        "model=veo-3.1-generate-001 · seed=2 · rain",
        "model=veo-3.1-fast-generate-001 · seed=2 · fog",
    ]
    assert varying_values([JobRequest(prompt="same"), JobRequest(prompt="same")]) == ["", ""]
    assert varying_values([]) == []


def test_a_group_zip_is_made_a_chunk_at_a_time(tmp_path):
    chunk = 64 * 1024
    files = []
    for n in range(3):
        path = tmp_path / f"v{n}.mp4"
        path.write_bytes(bytes([n]) * (5 * chunk + 17))
        files.append((f"job{n}/generated_video_1.mp4", path))
    files.append(("gone/generated_video_1.mp4", tmp_path / "deleted meanwhile.mp4"))
    pieces = list(zip_stream(files, chunk_bytes=chunk))
    # Never more than one chunk of a video (plus a header) at a time: memory stays bounded.
    assert max(len(piece) for piece in pieces) <= chunk + 1024
    with zipfile.ZipFile(io.BytesIO(b"".join(pieces))) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [name for name, _ in files[:3]]
        assert archive.read("job1/generated_video_1.mp4") == files[1][1].read_bytes()
