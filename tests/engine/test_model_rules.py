"""The rules table as Google's pages give it, the price table by resolution, the model table
``veotui models`` and ``GET /api/models`` show, the user label, and what the simulator makes
of 4k and of an extension."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from tests.engine.test_modes import completed
from veotui.core.capabilities import MODEL_CAPABILITIES, SOURCES
from veotui.core.catalog import model_catalog
from veotui.core.prices import DEFAULT_TABLE, ModelPrice, price_table
from veotui.core.request import Extends, JobRequest, ModelRefusal, cautions, refusals
from veotui.datadir.files import video_name
from veotui.generators.render import frame_size, render_video, video_seconds
from veotui.generators.veo import label_value

STANDARD, FAST, LITE = "veo-3.1-generate-001", "veo-3.1-fast-generate-001", "veo-3.1-lite-generate-001"


def request(**fields) -> JobRequest:
    return JobRequest.from_mapping({"prompt": "p", **fields})


#: The rules table as Google's pages give it: the resolutions each model renders, each at 4, 6
#: and 8 s. Lite makes no 4k.
RESOLUTIONS_OF = {STANDARD: ("720p", "1080p", "4k"), FAST: ("720p", "1080p", "4k"), LITE: ("720p", "1080p")}


@pytest.mark.parametrize("model", [STANDARD, FAST, LITE])
@pytest.mark.parametrize("resolution", ["720p", "1080p", "4k"])
@pytest.mark.parametrize("seconds", [4, 6, 8])
def test_every_row_of_the_rules_table(model, resolution, seconds):
    found = refusals(request(model=model, resolution=resolution, duration_seconds=seconds), has_image=False)
    if resolution in RESOLUTIONS_OF[model]:
        assert found == []
    else:
        assert [(r.field, str(r)) for r in found] == [
            ("resolution", f"resolution: {model} renders 720p or 1080p, not {resolution}")
        ]


def test_the_status_of_each_model():
    assert {model: caps.status for model, caps in MODEL_CAPABILITIES.items()} == {
        STANDARD: "GA",
        FAST: "GA",
        LITE: "preview",
    }


def test_only_third_parties_say_lite_takes_no_reference_images_so_it_is_a_caution():
    lite = request(model=LITE, reference_type="asset")
    assert refusals(lite, has_image=False, reference_count=2) == []
    [said] = cautions(lite, reference_count=2)
    assert "third-party providers" in said and LITE in said
    assert cautions(request(model=STANDARD), reference_count=2) == []
    assert cautions(lite, reference_count=0) == []


def test_no_google_page_says_an_extension_keeps_its_aspect_ratio_so_another_is_a_caution():
    source = "00000000-0000-4000-8000-000000000001"
    upright = request(extends_job_id=source, aspect_ratio="9:16")
    assert refusals(upright, has_image=False) == []
    # What the engine records of the video continued is ignored on input: the job's own says.
    echoed = request(extends={"job_id": source, "video": 1, "source_aspect_ratio": "9:16"}, aspect_ratio="9:16")
    assert echoed.extends == Extends(source) and cautions(echoed) == []
    assert cautions(upright) == []  # the video's ratio unknown (a job from before it was recorded)
    recorded = dataclasses.replace(upright, extends=Extends(source, source_seconds=8.0, source_aspect_ratio="16:9"))
    assert cautions(recorded) == [
        "the extension asks for 9:16 of a 16:9 video, and no Google page read says Veo extends a video into "
        "another aspect ratio; if Google refuses the job, it answers 400 and charges nothing"
    ]
    same = dataclasses.replace(recorded, aspect_ratio="16:9")
    assert cautions(same) == []
    # Kept with the job: the store and the server's JSON carry it.
    assert JobRequest.from_dict(json.loads(json.dumps(recorded.to_dict()))) == recorded


REFUSING_FACTS = (
    "resolutions",
    "durations",
    "aspect_ratios",
    "max_videos",
    "reference_types",
    "reference_durations",
    "extension",
    "extension_resolutions",
)


@pytest.mark.parametrize("model", [STANDARD, FAST, LITE])
def test_every_fact_names_its_sources_and_every_refusal_rests_on_a_google_page(model):
    caps = MODEL_CAPABILITIES[model]
    for fact in REFUSING_FACTS:
        keys = caps.source_of(fact)
        assert keys and all(key in SOURCES for key in keys), (model, fact)
        assert any(SOURCES[key].by_google for key in keys), f"{model} {fact} rests on third parties only"
    for source in SOURCES.values():
        assert source.url.startswith("https://") and len(source.read_on) == 10


def listed(model: str) -> ModelPrice:
    price = DEFAULT_TABLE.get(model)
    assert price is not None, f"{model} has no price"
    return price


def test_prices_by_resolution_are_googles_list():
    with_sound = {
        model: {r: listed(model).per_second(audio=True, resolution=r) for r in ("720p", "1080p", "4k")}
        for model in (STANDARD, FAST, LITE)
    }
    assert with_sound == {
        STANDARD: {"720p": 0.40, "1080p": 0.40, "4k": 0.60},
        FAST: {"720p": 0.10, "1080p": 0.12, "4k": 0.30},
        LITE: {"720p": 0.05, "1080p": 0.08, "4k": None},
    }
    # No Google page read prices Veo on Vertex without sound: every silent figure is marked,
    # and no figure with sound is.
    assert {model: listed(model).uncertain for model in (STANDARD, FAST, LITE)} == {
        STANDARD: {"silent_720p", "silent_1080p", "silent_4k"},
        FAST: {"silent_720p", "silent_1080p", "silent_4k"},
        LITE: {"silent_720p", "silent_1080p"},
    }
    assert all("no Google page" in listed(model).note for model in (STANDARD, FAST, LITE))


def test_the_model_table_says_what_the_rules_and_prices_say():
    catalog = model_catalog(DEFAULT_TABLE)
    assert catalog["default_model"] == STANDARD
    models = {entry["model"]: entry for entry in catalog["models"]}
    assert list(models) == [STANDARD, FAST, LITE]
    lite, standard = models[LITE], models[STANDARD]
    assert (lite["status"], lite["preview"], standard["preview"]) == ("preview", True, False)
    assert lite["accepts"]["resolutions"] == ["720p", "1080p"]
    assert standard["accepts"]["resolutions"] == ["720p", "1080p", "4k"]
    assert standard["accepts"]["durations"] == [4, 6, 8]
    for entry in (lite, standard):
        accepts = entry["accepts"]
        assert accepts["modes"] == ["text", "image", "first_last_frame", "reference_images", "extension", "sound"]
        assert accepts["number_of_videos"] == {"min": 1, "max": 4}
        assert accepts["aspect_ratios"] == ["16:9", "9:16"]
        assert {fact["fact"] for fact in entry["facts"]} >= {
            "status",
            "modes",
            "resolutions",
            "durations",
            "aspect_ratios",
            "max_videos",
            "prices",
        }
    # Each fact's pages, with the date each was read.
    assert all(len(source["read_on"]) == 10 for source in catalog["sources"].values())
    assert standard["accepts"]["durations_with_reference_images"] == [8]
    assert standard["accepts"]["extension"] == {
        "source_seconds": {"min": 1, "max": 30},
        "adds_seconds": 7,
        "resolutions": ["720p"],
        "durations": [8],
    }
    assert standard["prices"]["audio"] == {"720p": 0.40, "1080p": 0.40, "4k": 0.60}
    assert lite["prices"]["audio"] == {"720p": 0.05, "1080p": 0.08}
    for model, uncertain in (
        (STANDARD, ["silent_1080p", "silent_4k", "silent_720p"]),
        (FAST, ["silent_1080p", "silent_4k", "silent_720p"]),
        (LITE, ["silent_1080p", "silent_720p"]),
    ):
        prices = models[model]["prices"]
        assert prices["uncertain"] == uncertain and prices["note"]
        assert prices["source"] == "VERTEX-PRICING"
    for entry in catalog["models"]:
        for fact in entry["facts"]:
            assert fact["sources"] and all(key in catalog["sources"] for key in fact["sources"]), fact
    assert json.loads(json.dumps(catalog)) == catalog


def test_the_config_files_prices_show_in_the_model_table():
    table = price_table({FAST: {"audio_4k": 0.35, "silent": 0.09}})
    fast = next(entry for entry in model_catalog(table)["models"] if entry["model"] == FAST)
    assert fast["prices"]["audio"]["4k"] == 0.35
    assert fast["prices"]["silent"] == {"720p": 0.09, "1080p": 0.09, "4k": 0.09}
    assert fast["prices"]["uncertain"] == [] and fast["prices"]["source"] == "config file"


def test_veotui_models_without_a_server_prints_this_machines_table(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[prices."{LITE}"]\naudio_1080p = 0.09\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEOTUI_", "GOOGLE_"))}
    env["VEOTUI_CONFIG"] = str(config)
    done = subprocess.run(
        [sys.executable, "-m", "veotui", "models", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == model_catalog(price_table({LITE: {"audio_1080p": 0.09}}))


@pytest.mark.parametrize(
    ("user", "label"),
    [
        ("local", "local"),
        ("Ana.López@Example.COM", "ana_lópez_example_com"),
        ("team lead / ops", "team_lead___ops"),
        ("x" * 80, "x" * 63),
        ("é" * 70, "é" * 63),
        ("日本" * 40, "日本" * 21),
    ],
)
def test_the_user_label_keeps_to_googles_label_rules(user, label):
    value = label_value(user)
    assert value == label
    assert len(value) <= 63 and len(value.encode()) < 128


# -- the simulator ------------------------------------------------------------------------------


def test_the_simulator_draws_4k_at_a_sixth_of_its_width(tmp_path):
    assert frame_size("16:9", "720p") == (320, 180)
    assert frame_size("16:9", "1080p") == (480, 270)
    assert frame_size("16:9", "4k") == (640, 360)
    assert frame_size("9:16", "4k") == (360, 640)
    import av

    path = render_video(tmp_path / "4k.mp4", prompt="p", index=1, seconds=8, resolution="4k", audio=True)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
    assert path.stat().st_size < 100_000
    assert video_seconds(path) == pytest.approx(8.0)


async def test_a_simulated_4k_job_renders_small(local_backend):
    job = await completed(local_backend, await local_backend.submit({"prompt": "p", "resolution": "4k"}))
    import av

    path = local_backend.files.folder(job.job_id) / video_name(1)
    assert path.read_bytes()[4:8] == b"ftyp"
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        assert (context.width, context.height) == (640, 360)
        assert {stream.type for stream in container.streams} == {"video", "audio"}
    assert video_seconds(path) == pytest.approx(8.0)
    # A real 4k video of 8 s is megabytes; the simulator's stays under 100 KB.
    assert path.stat().st_size < 100_000


async def test_a_simulated_extension_is_7_s_longer_than_its_source(local_backend):
    source = await completed(local_backend, await local_backend.submit({"prompt": "a", "duration_seconds": 4}))
    first = await local_backend.submit({"prompt": "b", "extends_job_id": source.job_id})
    assert first.request.extends is not None and first.request.extends.source_seconds == 4.0
    first = await completed(local_backend, first)
    assert video_seconds(local_backend.files.folder(first.job_id) / video_name(1)) == pytest.approx(11.0)
    second = await completed(local_backend, await local_backend.submit({"prompt": "c", "extends_job_id": first.job_id}))
    assert second.request.video_seconds == pytest.approx(18.0)
    assert video_seconds(local_backend.files.folder(second.job_id) / video_name(1)) == pytest.approx(18.0)


@pytest.mark.parametrize(("seconds", "short"), [(31, "over 30 s"), (0.5, "under 1 s")])
async def test_an_extension_of_a_video_outside_1_to_30_s_is_refused_by_name(local_backend, seconds, short):
    source = await completed(local_backend, await local_backend.submit({"prompt": "a long one"}))
    video = local_backend.files.folder(source.job_id) / video_name(1)
    render_video(video, prompt="a long one", index=1, seconds=seconds)
    with pytest.raises(ModelRefusal) as caught:
        await local_backend.submit({"prompt": "and then", "extends_job_id": source.job_id})
    assert caught.value.http_status == 422
    assert str(caught.value) == (
        f"extends_video: video 1 of job {source.job_id} is {seconds:.1f} s long; "
        "veo-3.1-generate-001 extends videos of 1 to 30 s"
    )
    assert caught.value.short == short
    assert local_backend.files.job_ids_on_disk() == {source.job_id}


@pytest.mark.parametrize("seconds", [1, 30])
async def test_an_extension_of_a_video_of_1_or_30_s_is_taken(local_backend, seconds):
    source = await completed(local_backend, await local_backend.submit({"prompt": "a long one"}))
    render_video(local_backend.files.folder(source.job_id) / video_name(1), prompt="p", index=1, seconds=seconds)
    extension = await local_backend.submit({"prompt": "and then", "extends_job_id": source.job_id})
    assert extension.request.video_seconds == seconds + 7
