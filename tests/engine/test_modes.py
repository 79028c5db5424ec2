"""Veo 3.1 modes at submit: the fields, the per-model rules, the input files, extension."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.support.waiting import wait_for
from veotui.core.capabilities import MODEL_CAPABILITIES
from veotui.core.errors import Conflict, InvalidRequest, JobNotFound
from veotui.core.job import Status
from veotui.core.request import Extends, JobRequest
from veotui.datadir.files import video_name
from veotui.generators.render import frame_size

LITE = "veo-3.1-lite-generate-001"


def png(colour=(200, 80, 20), size=(64, 36)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_switches_and_extends_parse_from_form_text_and_json_values():
    request = JobRequest.from_mapping(
        {
            "prompt": "p",
            "generate_audio": "false",
            "enhance_prompt": True,
            "person_generation": "ALLOW_ADULT",
            "reference_type": "style",
            "extends_job_id": "00000000-0000-4000-8000-000000000001",
            "extends_video": "2",
        }
    )
    assert request.generate_audio is False and request.enhance_prompt is True
    assert request.person_generation == "allow_adult" and request.reference_type == "style"
    assert request.extends == Extends("00000000-0000-4000-8000-000000000001", 2)
    assert JobRequest.from_dict(request.to_dict()) == request
    again = JobRequest.from_mapping({"prompt": "p", "extends": {"job_id": request.extends.job_id}})
    assert again.extends == Extends(request.extends.job_id, 1)
    plain = JobRequest.from_mapping({"prompt": "p", "generate_audio": ""})
    assert (plain.generate_audio, plain.enhance_prompt, plain.extends) == (None, None, None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"generate_audio": "maybe"}, "generate_audio must be true or false"),
        ({"enhance_prompt": 2}, "enhance_prompt must be true or false"),
        ({"person_generation": "everyone"}, "person_generation must be one of allow_adult, dont_allow, allow_all"),
        ({"reference_type": "mood"}, "reference_type must be one of asset, style"),
        ({"extends_job_id": "abc"}, "extends_job_id must be a job id"),
        ({"extends_video": "2"}, "extends_video needs extends_job_id"),
        ({"extends_job_id": "00000000-0000-4000-8000-000000000001", "extends_video": 0}, "extends_video is 1-based"),
        ({"extends": 5}, "extends must be"),
    ],
)
def test_bad_mode_fields_are_refused_naming_the_field(fields, message):
    with pytest.raises(InvalidRequest, match=message):
        JobRequest.from_mapping({"prompt": "p", **fields})


@pytest.mark.parametrize(
    ("fields", "inputs", "message"),
    [
        ({}, {"last_frame": True}, "last_frame needs an input image"),
        ({"model": LITE, "resolution": "4k"}, {}, f"resolution: {LITE} renders 720p or 1080p, not 4k"),
        ({}, {"references": 1, "image": True}, "reference_image: veo-3.1-generate-001 takes reference images only"),
        ({"reference_type": "style"}, {"references": 1}, "reference_type: veo-3.1-generate-001 takes asset"),
        ({"reference_type": "style", "model": LITE}, {"references": 1}, f"reference_type: {LITE} takes asset"),
        (
            {"reference_type": "style", "model": "veo-3.1-fast-generate-001"},
            {"references": 1},
            "reference_type: veo-3.1-fast-generate-001 takes asset",
        ),
        ({"duration_seconds": 6}, {"references": 2}, "duration_seconds: veo-3.1-generate-001 makes 8 s videos with"),
    ],
)
async def test_a_combination_the_model_refuses_is_a_422_naming_field_and_model(local_backend, fields, inputs, message):
    image = png() if inputs.get("image") else None
    last = (png((0, 0, 255)), "last.png") if inputs.get("last_frame") else None
    references = [(png((0, n * 40, 0)), f"ref{n}.png") for n in range(inputs.get("references", 0))]
    with pytest.raises(InvalidRequest, match=message) as caught:
        await local_backend.submit({"prompt": "p", **fields}, image, "img.png", last_frame=last, references=references)
    assert caught.value.http_status == 422
    assert local_backend.files.job_ids_on_disk() == set()
    assert (await local_backend.list_jobs()).queued == []


def test_the_rules_table_covers_every_model():
    from veotui.core.capabilities import MODELS

    assert set(MODEL_CAPABILITIES) == set(MODELS)


async def test_inputs_are_kept_as_jpegs_in_the_job_folder(local_backend):
    job = await local_backend.submit(
        {"prompt": "a fox", "generate_audio": False, "person_generation": "dont_allow", "enhance_prompt": "true"},
        png(),
        "first.png",
        last_frame=(png((0, 0, 255)), "last.png"),
    )
    assert (job.has_image, job.has_last_frame, job.reference_count) == (True, True, 0)
    folder = local_backend.files.folder(job.job_id)
    assert (folder / "last_frame.jpg").read_bytes()[:2] == b"\xff\xd8"
    stored = local_backend.store.get(job.job_id)
    assert stored.request == job.request and stored.has_last_frame
    data = job.to_dict()
    assert (data["generate_audio"], data["person_generation"], data["enhance_prompt"]) == (False, "dont_allow", True)

    refs = await local_backend.submit(
        {"prompt": "a product"}, references=[(png((n * 60, 0, 0)), f"r{n}.png") for n in range(3)]
    )
    assert refs.reference_count == 3 and refs.request.reference_type == "asset"
    names = sorted(p.name for p in local_backend.files.folder(refs.job_id).iterdir())
    assert names == ["reference_1.jpg", "reference_2.jpg", "reference_3.jpg"]


async def test_a_bad_reference_image_is_refused_by_name_and_leaves_no_folder(local_backend):
    with pytest.raises(InvalidRequest, match="r2.png is not an image"):
        await local_backend.submit({"prompt": "p"}, references=[(png(), "r1.png"), (b"nope", "r2.png")])
    assert local_backend.files.job_ids_on_disk() == set()


async def test_extension_needs_a_completed_job_and_an_existing_video(local_backend):
    missing = "00000000-0000-4000-8000-00000000abcd"
    with pytest.raises(JobNotFound):
        await local_backend.submit({"prompt": "p", "extends_job_id": missing})
    source = await local_backend.submit({"prompt": "source [fail]"})
    await wait_for(lambda: local_backend.store.get(source.job_id).status == Status.FAILED, what="the source to fail")
    with pytest.raises(Conflict, match="failed; only a completed or unfinished job's video can be extended") as caught:
        await local_backend.submit({"prompt": "p", "extends_job_id": source.job_id})
    assert caught.value.http_status == 409

    done = await local_backend.submit({"prompt": "source"})
    await wait_for(lambda: local_backend.store.get(done.job_id).status == Status.COMPLETED, what="completion")
    with pytest.raises(InvalidRequest, match="has no video 2; it has 1"):
        await local_backend.submit({"prompt": "p", "extends_job_id": done.job_id, "extends_video": 2})
    for resolution in ("1080p", "4k"):
        with pytest.raises(InvalidRequest, match=f"resolution: .* extends videos at 720p, not {resolution}"):
            await local_backend.submit({"prompt": "p", "extends_job_id": done.job_id, "resolution": resolution})
    with pytest.raises(InvalidRequest, match="duration_seconds: .* makes 8 s videos with an extension, not 6"):
        await local_backend.submit({"prompt": "p", "extends_job_id": done.job_id, "duration_seconds": 6})
    with pytest.raises(InvalidRequest, match="without an input image"):
        await local_backend.submit({"prompt": "p", "extends_job_id": done.job_id}, png(), "i.png")

    extension = await local_backend.submit({"prompt": "and then", "extends_job_id": done.job_id})
    copied = local_backend.files.input_video(extension.job_id)
    original = local_backend.files.folder(done.job_id) / video_name(1)
    assert copied.read_bytes() == original.read_bytes()
    assert extension.to_dict()["extends"] == {
        "job_id": done.job_id,
        "video": 1,
        "source_seconds": 8.0,
        "source_aspect_ratio": "16:9",
    }
    timeline = [event.detail or "" for event in await local_backend.timeline(extension.job_id)]
    assert not [line for line in timeline if line.startswith("caution:")]  # same ratio: nothing to say


async def test_an_extension_in_another_aspect_ratio_is_sent_with_a_caution(local_backend):
    # No Google page says an extension keeps its video's aspect ratio: Google has the last word.
    source = await completed(local_backend, await local_backend.submit({"prompt": "a boat", "duration_seconds": 4}))
    extension = await local_backend.submit(
        {"prompt": "an island", "extends_job_id": source.job_id, "aspect_ratio": "9:16"}
    )
    assert extension.request.aspect_ratio == "9:16"
    assert extension.request.extends is not None and extension.request.extends.source_aspect_ratio == "16:9"
    said = (
        "caution: the extension asks for 9:16 of a 16:9 video, and no Google page read says Veo extends a video "
        "into another aspect ratio; if Google refuses the job, it answers 400 and charges nothing"
    )
    timeline = [event.detail or "" for event in await local_backend.timeline(extension.job_id)]
    assert said in timeline
    # The generator was asked for 9:16: the simulator draws the extension upright.
    done = await completed(local_backend, extension)
    assert done.request.extends == extension.request.extends
    first = frames_of(local_backend.files.folder(done.job_id) / video_name(1))[0]
    assert first.size == frame_size("9:16") and frame_size("9:16")[0] < frame_size("9:16")[1]


# -- the simulator shows each mode in its video ---------------------------------------------


def frames_of(path) -> list[Image.Image]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_image().convert("RGB") for frame in container.decode(video=0)]


def has_audio(path) -> bool:
    import av

    with av.open(str(path)) as container:
        return any(stream.type == "audio" for stream in container.streams)


def mean_colour(image: Image.Image, box=None) -> tuple[float, ...]:
    from PIL import ImageStat

    return tuple(ImageStat.Stat(image.crop(box) if box else image).mean)


def close(a, b, tolerance=20) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


async def completed(backend, job):
    await wait_for(lambda: backend.store.get(job.job_id).status.is_final, what="the job to end")
    job = backend.store.get(job.job_id)
    assert job.status == Status.COMPLETED, job.error
    return job


async def test_the_simulated_video_ends_on_the_last_frame_and_has_sound_unless_told_not_to(local_backend):
    blue = (20, 40, 230)
    job = await completed(
        local_backend,
        await local_backend.submit(
            {"prompt": "door", "duration_seconds": 4}, png((230, 30, 30)), "a.png", last_frame=(png(blue), "b.png")
        ),
    )
    video = local_backend.files.folder(job.job_id) / video_name(1)
    frames = frames_of(video)
    assert close(mean_colour(frames[-1]), blue)
    assert not close(mean_colour(frames[0]), blue)
    assert has_audio(video)

    silent = await completed(
        local_backend, await local_backend.submit({"prompt": "quiet", "duration_seconds": 4, "generate_audio": False})
    )
    assert not has_audio(local_backend.files.folder(silent.job_id) / video_name(1))


async def test_reference_images_appear_in_the_simulated_video(local_backend):
    green = (10, 220, 40)
    job = await completed(
        local_backend, await local_backend.submit({"prompt": "mug"}, references=[(png(green), "r.png")])
    )
    frame = frames_of(local_backend.files.folder(job.job_id) / video_name(1))[5]
    width, height = frame.size
    # One tile, a fifth of the frame, in the top-right corner.
    tile = (width - width // 5 + 2, 4, width - 4, height // 5 - 2)
    assert close(mean_colour(frame, tile), green)


async def test_a_simulated_extension_starts_on_the_last_frame_of_the_video_it_continues(local_backend):
    source = await completed(
        local_backend,
        await local_backend.submit(
            {"prompt": "source", "duration_seconds": 4},
            png((200, 200, 0)),
            "a.png",
            last_frame=(png((0, 200, 200)), "b.png"),
        ),
    )
    source_last = frames_of(local_backend.files.folder(source.job_id) / video_name(1))[-1]
    extension = await completed(
        local_backend, await local_backend.submit({"prompt": "and then", "extends_job_id": source.job_id})
    )
    first = frames_of(local_backend.files.folder(extension.job_id) / video_name(1))[0]
    assert close(mean_colour(first), mean_colour(source_last), tolerance=8)


async def test_the_prompt_enhance_switch_shows_in_the_caption(tmp_path):
    from veotui.generators.render import render_video

    def caption(enhance):
        path = render_video(tmp_path / f"{enhance}.mp4", prompt="a fox", index=1, seconds=1, enhance_prompt=enhance)
        return frames_of(path)[0].crop((0, 0, 160, 24))

    plain, enhanced, verbatim = caption(None), caption(True), caption(False)
    assert plain.tobytes() != enhanced.tobytes()
    assert enhanced.tobytes() != verbatim.tobytes()


async def test_a_silent_video_is_estimated_cheaper(local_backend):
    sound = await local_backend.submit({"prompt": "p"})
    silent = await local_backend.submit({"prompt": "p", "generate_audio": False})
    assert sound.estimated_cost_usd is not None and silent.estimated_cost_usd is not None
    assert silent.estimated_cost_usd < sound.estimated_cost_usd
