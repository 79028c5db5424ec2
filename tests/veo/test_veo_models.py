"""Veo as Google offers it today, against the fake Vertex AI: every row of the rules table and
of the price table holds through the engine, REST (a real ``veotui serve``), the CLI and the
TUI's form; the request Google receives carries the model, the resolution and the length asked
and the labels (the job, and its user within Google's label rules); what a model refuses is a
422 naming the model, greyed out in the form, and nothing reaches Google; reference images and
extensions are 8 s, an extension knows the length of the video it continues; the config
file's prices make the estimate and show in ``veotui models`` and ``GET /api/models``."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from textual.widgets import Input, OptionList, Static, TextArea

from tests.engine.test_model_rules import RESOLUTIONS_OF
from tests.server.harness import ServeProcess
from tests.support.waiting import wait_for, wait_until
from tests.tui.conftest import RecordingApp
from tests.veo.fake_vertex import FakeVertex
from veotui.backend.local import LocalBackend
from veotui.core.catalog import model_catalog
from veotui.core.errors import InvalidRequest
from veotui.core.job import Job, Status
from veotui.core.prices import DEFAULT_TABLE
from veotui.generators.render import render_video
from veotui.settings import token_sha256
from veotui.tui.form import ChoiceSelect, NewJobScreen
from veotui.tui.screen import MainScreen

STANDARD, FAST, LITE = "veo-3.1-generate-001", "veo-3.1-fast-generate-001", "veo-3.1-lite-generate-001"
#: Every row of the rules table: 3.1 and Fast at 720p, 1080p and 4k, Lite at 720p and 1080p,
#: each at 4, 6 and 8 s.
ROWS = [
    (model, resolution, seconds)
    for model, resolutions in RESOLUTIONS_OF.items()
    for resolution in resolutions
    for seconds in (4, 6, 8)
]
#: The price table, US dollars a second with sound (Google's price list, September 2026).
WITH_SOUND = {
    (STANDARD, "720p"): 0.40,
    (STANDARD, "1080p"): 0.40,
    (STANDARD, "4k"): 0.60,
    (FAST, "720p"): 0.10,
    (FAST, "1080p"): 0.12,
    (FAST, "4k"): 0.30,
    (LITE, "720p"): 0.05,
    (LITE, "1080p"): 0.08,
}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (30, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def sent_parameters(fake: FakeVertex, prompt: str) -> tuple[dict, dict]:
    """The parameters and labels of the one submit Google received for ``prompt``."""
    [submit] = [s for s in fake.submits() if s.body["instances"][0]["prompt"] == prompt]
    return submit.body["parameters"], submit.body["labels"]


def sent_to(fake: FakeVertex, prompt: str) -> str:
    """The model the one submit for ``prompt`` went to."""
    [submit] = [s for s in fake.submits() if s.body["instances"][0]["prompt"] == prompt]
    return submit.path.rsplit("/models/", 1)[1].removesuffix(":predictLongRunning")


async def ended(backend: LocalBackend, job: Job) -> Job:
    async def done() -> bool:
        return (await backend.get(job.job_id)).status.is_final

    await wait_for(done, what=f"job {job.job_id[:8]} to end")
    return await backend.get(job.job_id)


# -- the engine -------------------------------------------------------------------------------


async def test_google_receives_the_resolution_and_length_of_every_row(make_settings, make_veo, fake_vertex):
    settings = make_settings(max_concurrent=4)
    fake_vertex.pending_polls = 0
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        jobs = []
        for model, resolution, seconds in ROWS:
            fields = {"model": model, "resolution": resolution, "duration_seconds": seconds}
            jobs.append(await backend.submit({"prompt": f"{model} {resolution} {seconds}", **fields}))
        jobs = [await ended(backend, job) for job in jobs]

    for job, (model, resolution, seconds) in zip(jobs, ROWS, strict=True):
        assert job.status == Status.COMPLETED, job.error
        parameters, labels = sent_parameters(fake_vertex, job.prompt)
        assert (parameters["resolution"], parameters["durationSeconds"]) == (resolution, seconds)
        assert labels == {"veotui_job": job.job_id, "veotui_user": "local"}
        assert job.estimated_cost_usd == round(seconds * WITH_SOUND[(model, resolution)], 2)
        assert sent_to(fake_vertex, job.prompt) == model


#: Users as a config file may name them, and the label value Google receives for each.
ODD_USERS = {
    "Ana.López@Example.COM": "ana_lópez_example_com",
    "007.Agent@MI6.gov.uk": "007_agent_mi6_gov_uk",
    "J.R.R. Tolkien <jrr@Middle-Earth.org>": "j_r_r__tolkien__jrr_middle-earth_org_",
    # 77 characters: cut to Google's 63.
    "Maximilian.Alexander.von.Habsburg-Lothringen@Very-Long-Department.Example.COM": (
        "maximilian_alexander_von_habsburg-lothringen_very-long-departme"
    ),
}


def keeps_googles_label_rules(labels: dict[str, str]) -> bool:
    """Google's label rules: a key starts with a lowercase letter; keys and values hold only
    lowercase letters (international ones too), digits, ``_`` and ``-``, at most 63
    characters and under 128 bytes."""

    def allowed(char: str) -> bool:
        return char in "_-" or unicodedata.category(char) in ("Ll", "Lo") or unicodedata.category(char)[0] == "N"

    return all(
        unicodedata.category(key[0]) in ("Ll", "Lo")
        and all(len(text) <= 63 and len(text.encode()) < 128 and all(map(allowed, text)) for text in (key, value))
        for key, value in labels.items()
    )


async def test_every_request_carries_the_job_and_its_user_as_labels_google_accepts(
    make_settings, make_veo, fake_vertex
):
    settings = make_settings(max_concurrent=4)
    fake_vertex.pending_polls = 0
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        jobs = {user: await backend.submit({"prompt": f"labels for {user}"}, user=user) for user in ODD_USERS}
        jobs = {user: await ended(backend, job) for user, job in jobs.items()}
    for user, label in ODD_USERS.items():
        _, labels = sent_parameters(fake_vertex, f"labels for {user}")
        assert labels == {"veotui_job": jobs[user].job_id, "veotui_user": label}
        assert keeps_googles_label_rules(labels), labels


@pytest.mark.parametrize(
    ("fields", "references", "said"),
    [
        ({"model": LITE, "resolution": "4k"}, 0, f"resolution: {LITE} renders 720p or 1080p, not 4k"),
        ({"model": LITE, "reference_type": "style"}, 1, f"reference_type: {LITE} takes asset reference images"),
        ({"reference_type": "style"}, 2, f"reference_type: {STANDARD} takes asset reference images"),
        ({"model": FAST, "reference_type": "style"}, 1, f"reference_type: {FAST} takes asset reference images"),
    ],
)
async def test_what_a_model_refuses_never_reaches_google(
    make_settings, make_veo, fake_vertex, fields, references, said
):
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        with pytest.raises(InvalidRequest, match=said) as caught:
            await backend.submit({"prompt": "no", **fields}, references=[(png(), "r.png")] * references)
        assert caught.value.http_status == 422
        assert backend.files.job_ids_on_disk() == set()
    assert fake_vertex.requests == []


async def test_lite_reference_images_are_sent_with_a_caution(make_settings, make_veo, fake_vertex):
    # Only third parties say Lite takes no reference images: Google has the last word.
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await ended(
            backend, await backend.submit({"prompt": "a mug", "model": LITE}, references=[(png(), "r.png")])
        )
        timeline = [event.detail or "" for event in await backend.timeline(job.job_id)]
    assert job.status == Status.COMPLETED, job.error
    [submit] = fake_vertex.submits()
    assert [r["referenceType"] for r in submit.body["instances"][0]["referenceImages"]] == ["ASSET"]
    assert any(line.startswith("caution: third-party providers say veo-3.1-lite") for line in timeline)


async def test_an_extension_in_another_aspect_ratio_is_sent_to_google_with_a_caution(
    make_settings, make_veo, fake_vertex
):
    # No Google page says an extension keeps its video's aspect ratio: Google has the last word.
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        source = await ended(backend, await backend.submit({"prompt": "a boat"}))
        extension = await ended(
            backend,
            await backend.submit({"prompt": "an island", "extends_job_id": source.job_id, "aspect_ratio": "9:16"}),
        )
        timeline = [event.detail or "" for event in await backend.timeline(extension.job_id)]
    assert extension.status == Status.COMPLETED, extension.error
    parameters, _ = sent_parameters(fake_vertex, "an island")
    assert (parameters["aspectRatio"], parameters["resolution"]) == ("9:16", "720p")
    assert any(line.startswith("caution: the extension asks for 9:16 of a 16:9 video") for line in timeline)


async def test_an_extension_asks_720p_and_8_s_and_knows_how_long_its_source_is(make_settings, make_veo, fake_vertex):
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        source = await ended(backend, await backend.submit({"prompt": "a boat"}))
        extension = await ended(backend, await backend.submit({"prompt": "an island", "extends_job_id": source.job_id}))
    assert extension.status == Status.COMPLETED, extension.error
    parameters, _ = sent_parameters(fake_vertex, "an island")
    assert (parameters["resolution"], parameters["durationSeconds"]) == ("720p", 8)
    # The fake's videos are 1 s long: the extension makes about 8 s.
    assert extension.request.extends is not None and extension.request.extends.source_seconds == 1.0
    assert extension.request.video_seconds == 8.0


# -- REST and the CLI: a real `veotui serve` on the fake --------------------------------------


@pytest.fixture
def serve_veo(tmp_path, fake_vertex) -> Iterator[Callable[..., str]]:
    """Starts ``veotui serve`` in express mode against the fake Vertex AI, with the config file
    given (none by default); each server is stopped by its PID."""
    servers: list[ServeProcess] = []
    fake_vertex.pending_polls = 0

    def start(config: str | None = None) -> str:
        config_file = tmp_path / "veotui.toml"
        if config is not None:
            config_file.write_text(config)
            config_file.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "VEOTUI_", "STORAGE_EMULATOR"))}
        env.update(
            {
                "VEOTUI_DATA_DIR": str(tmp_path / "data"),
                "VEOTUI_CONFIG": str(config_file) if config is not None else "/nonexistent/veotui.toml",
                "VEOTUI_POLL_INTERVAL": "0.05",
                "GOOGLE_API_KEY": "express-test-key",
                "GOOGLE_VERTEX_BASE_URL": fake_vertex.url,
            }
        )
        servers.append(ServeProcess(env))
        return servers[-1].url

    try:
        yield start
    finally:
        for server in servers:
            server.kill()


@pytest.fixture
def veo_server(serve_veo) -> str:
    return serve_veo()


def cli(
    *args: str, remote: str | None = None, token: str | None = None, columns: int = 80
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "VEOTUI_"))}
    env["VEOTUI_CONFIG"] = "/nonexistent/veotui.toml"
    env["COLUMNS"] = str(columns)
    if remote:
        env["VEOTUI_REMOTE"] = remote
    if token:
        env["VEOTUI_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "veotui", *args], env=env, capture_output=True, text=True, timeout=60)


def refused_by_the_cli(done: subprocess.CompletedProcess, said: str) -> bool:
    """Exit 2 with one line on stderr saying what is wrong, no traceback, no job id."""
    return done.returncode == 2 and done.stderr == f"veotui: {said}\n" and done.stdout == ""


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def status(url: str, job_id: str, token: str | None = None) -> dict:
    return httpx.get(f"{url}/api/status/{job_id}", headers=auth(token)).json()


def completed(url: str, job_id: str, token: str | None = None) -> Callable[[], bool]:
    return lambda: status(url, job_id, token)["status"] == "completed"


def test_every_row_through_rest(veo_server, fake_vertex):
    jobs = {}
    for model, resolution, seconds in ROWS:
        prompt = f"rest {model} {resolution} {seconds}"
        answer = httpx.post(
            f"{veo_server}/api/generate",
            json={"prompt": prompt, "model": model, "resolution": resolution, "duration_seconds": seconds},
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["estimated_cost_usd"] == round(seconds * WITH_SOUND[(model, resolution)], 2)
        jobs[prompt] = answer.json()["job_id"]

    for prompt, job_id in jobs.items():
        wait_until(completed(veo_server, job_id), what=prompt)
        parameters, labels = sent_parameters(fake_vertex, prompt)
        _, model, resolution, duration = prompt.split()
        assert (parameters["resolution"], parameters["durationSeconds"]) == (resolution, int(duration))
        assert labels == {"veotui_job": job_id, "veotui_user": "local"}
        assert sent_to(fake_vertex, prompt) == model


def test_every_row_through_the_cli(veo_server, fake_vertex):
    jobs = {}
    for model, resolution, seconds in ROWS:
        prompt = f"cli {model} {resolution} {seconds}"
        done = cli(
            "submit",
            prompt,
            "--model",
            model,
            "--resolution",
            resolution,
            "--duration",
            str(seconds),
            remote=veo_server,
        )
        assert done.returncode == 0, done.stderr
        jobs[prompt] = done.stdout.strip()

    for prompt, job_id in jobs.items():
        wait_until(completed(veo_server, job_id), what=prompt)
        parameters, _ = sent_parameters(fake_vertex, prompt)
        _, model, resolution, duration = prompt.split()
        assert (parameters["resolution"], parameters["durationSeconds"]) == (resolution, int(duration))
        assert sent_to(fake_vertex, prompt) == model
        assert status(veo_server, job_id)["estimated_cost_usd"] == round(
            int(duration) * WITH_SOUND[(model, resolution)], 2
        )


def test_what_a_model_refuses_reaches_google_through_neither_rest_nor_the_cli(veo_server, fake_vertex, tmp_path):
    reference = tmp_path / "reference.png"
    reference.write_bytes(png())
    lite_4k = f"resolution: {LITE} renders 720p or 1080p, not 4k"

    def style(model: str) -> str:
        return f"reference_type: {model} takes asset reference images, not style (style references were Veo 2's)"

    def multipart(**fields: str) -> dict[str, Any]:
        parts = [(name, (None, value)) for name, value in {"prompt": "no", **fields}.items()]
        return {"files": [*parts, ("reference_image", ("r.png", png(), "image/png"))]}

    rest: list[tuple[dict[str, Any], str]] = [
        ({"json": {"prompt": "no", "model": LITE, "resolution": "4k"}}, lite_4k),
        ({"files": [("prompt", (None, "no")), ("model", (None, LITE)), ("resolution", (None, "4k"))]}, lite_4k),
        *((multipart(model=model, reference_type="style"), style(model)) for model in (STANDARD, FAST, LITE)),
        (
            {
                "json": {
                    "prompt": "no",
                    "model": LITE,
                    "reference_type": "style",
                    "reference_images_base64": [base64.b64encode(png()).decode()],
                }
            },
            style(LITE),
        ),
        # Reference images make 8 s videos.
        (
            multipart(duration_seconds="6"),
            f"duration_seconds: {STANDARD} makes 8 s videos with reference images, not 6",
        ),
    ]
    for kwargs, said in rest:
        answer = httpx.post(f"{veo_server}/api/generate", **kwargs)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"] == said

    assert refused_by_the_cli(cli("submit", "no", "--model", LITE, "--resolution", "4k", remote=veo_server), lite_4k)
    for model in (STANDARD, FAST, LITE):
        done = cli(
            "submit",
            "no",
            "--model",
            model,
            "--reference",
            str(reference),
            "--reference-type",
            "style",
            remote=veo_server,
        )
        assert refused_by_the_cli(done, style(model)), done.stderr

    assert fake_vertex.requests == []
    jobs = httpx.get(f"{veo_server}/api/jobs").json()
    assert (jobs["processing"], jobs["queued"], jobs["history"]) == ([], [], [])


def test_reference_images_and_extensions_are_8_s_and_an_extension_knows_its_source(veo_server, fake_vertex, tmp_path):
    one_second = fake_vertex.video
    fake_vertex.video = render_video(tmp_path / "long.mp4", prompt="a long take", index=1, seconds=31).read_bytes()
    long = httpx.post(f"{veo_server}/api/generate", json={"prompt": "a long take"}).json()["job_id"]
    wait_until(completed(veo_server, long), what="the 31 s video")
    fake_vertex.video = one_second
    short = httpx.post(
        f"{veo_server}/api/generate",
        files=[("prompt", (None, "a mug")), ("reference_image", ("r.png", png(), "image/png"))],
    ).json()["job_id"]
    wait_until(completed(veo_server, short), what="the 1 s video")
    parameters, _ = sent_parameters(fake_vertex, "a mug")
    assert parameters["durationSeconds"] == 8

    # Google extends videos of 1 to 30 s: the 31 s one is refused by name, nothing is sent.
    said = f"extends_video: video 1 of job {long} is 31.0 s long; {STANDARD} extends videos of 1 to 30 s"
    answer = httpx.post(f"{veo_server}/api/generate", json={"prompt": "no", "extends_job_id": long})
    assert (answer.status_code, answer.json()["detail"]) == (422, said)
    assert refused_by_the_cli(cli("submit", "no", "--extend", long, remote=veo_server), said)

    extended = cli("submit", "the island", "--extend", short, remote=veo_server)
    assert extended.returncode == 0, extended.stderr
    extension = extended.stdout.strip()
    assert status(veo_server, extension)["extends"] == {
        "job_id": short,
        "video": 1,
        "source_seconds": 1.0,
        "source_aspect_ratio": "16:9",
    }
    shown = cli("status", extension, remote=veo_server)
    assert shown.returncode == 0, shown.stderr
    assert "about 8 s (the 1 s video and 7 s more)" in shown.stdout
    wait_until(completed(veo_server, extension), what="the extension")
    parameters, _ = sent_parameters(fake_vertex, "the island")
    assert (parameters["resolution"], parameters["durationSeconds"]) == ("720p", 8)
    [submit] = [s for s in fake_vertex.submits() if s.body["instances"][0]["prompt"] == "the island"]
    assert base64.b64decode(submit.body["instances"][0]["video"]["bytesBase64Encoded"]) == one_second
    assert [s.body["instances"][0]["prompt"] for s in fake_vertex.submits()] == ["a long take", "a mug", "the island"]


#: A config file: two users with odd names, and one price of its own.
USERS = {"Ana.López@Example.COM": "ana-token", "007.Agent@MI6.gov.uk": "agent-token"}
CONFIG = f"""
[prices."{FAST}"]
audio_4k = 0.35

[users."Ana.López@Example.COM"]
token_sha256 = "{token_sha256("ana-token")}"

[users."007.Agent@MI6.gov.uk"]
token_sha256 = "{token_sha256("agent-token")}"
"""


def test_the_config_files_users_label_the_requests_and_its_prices_make_the_estimate(serve_veo, fake_vertex):
    url = serve_veo(CONFIG)
    jobs = {}
    for user, token in USERS.items():
        answer = httpx.post(
            f"{url}/api/generate",
            json={"prompt": f"a kite for {user}", "model": FAST, "resolution": "4k", "duration_seconds": 4},
            headers=auth(token),
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["estimated_cost_usd"] == 1.40  # 4 s at the file's $0.35, not the list's $0.30
        jobs[user] = answer.json()["job_id"]
    for user, job_id in jobs.items():
        wait_until(completed(url, job_id, USERS[user]), what=f"{user}'s job")
        _, labels = sent_parameters(fake_vertex, f"a kite for {user}")
        assert labels == {"veotui_job": job_id, "veotui_user": ODD_USERS[user]}
        assert keeps_googles_label_rules(labels)

    models = httpx.get(f"{url}/api/models", headers=auth("agent-token")).json()
    fast = next(entry for entry in models["models"] if entry["model"] == FAST)
    assert fast["prices"]["audio"] == {"720p": 0.10, "1080p": 0.12, "4k": 0.35}
    assert fast["prices"]["source"] == "config file"
    # The figures the file leaves alone keep their mark.
    assert fast["prices"]["uncertain"] == ["silent_1080p", "silent_4k", "silent_720p"]
    people = cli("models", remote=url, token="ana-token")
    assert people.returncode == 0, people.stderr
    overview = people.stdout.split(f"\n{STANDARD} (the default)\n")[0]
    [row] = [line for line in overview.splitlines() if line.strip().startswith(FAST)]
    assert row.split()[-3:] == ["0.10/0.08", "0.12/0.10", "0.35/0.30"]


def test_get_api_models_is_the_engines_table(veo_server):
    answer = httpx.get(f"{veo_server}/api/models")
    assert answer.status_code == 200
    assert answer.json() == json.loads(json.dumps(model_catalog(DEFAULT_TABLE)))


def test_veotui_models_asks_the_server_and_prints_json_or_a_table(veo_server):
    remote = cli("models", "--json", remote=veo_server)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == httpx.get(f"{veo_server}/api/models").json()
    people = cli("models", remote=veo_server)
    assert people.returncode == 0, people.stderr
    for text in (STANDARD, FAST, LITE, "preview", "0.60/0.40", "$0.30", "VERTEX-EXTEND", "2026-12-07", "sources:"):
        assert text in people.stdout
    # The silent figures, which no Google page gives, and nothing else: three a model, two for
    # Lite (no 4k).
    standard_table, rest = people.stdout.split(f"\n{STANDARD} (the default)\n")[1].split(f"\n{FAST}\n")
    fast_table, lite_table = rest.split(f"\n{LITE}\n")
    lite_table = lite_table.split("sources:")[0]
    counts = [table.count("(uncertain)") for table in (standard_table, fast_table, lite_table)]
    assert counts == [3, 3, 2] and people.stdout.count("(uncertain)") == 8
    overview = people.stdout.split(f"\n{STANDARD} (the default)\n")[0]
    tables = people.stdout.split("sources:")[0]
    assert all(len(line) <= 80 for line in tables.splitlines()), "the tables fit 80 columns"
    for model in (STANDARD, FAST, LITE):
        assert f" {model} " in overview, "the overview keeps model names whole at 80 columns"


# -- the TUI's form --------------------------------------------------------------------------


def offered(form: NewJobScreen, selector: str) -> dict:
    """The choices of a form field as the list shows them, and whether each can be picked."""
    widget = form.query_one(selector, ChoiceSelect)
    options = widget.query_one(OptionList).options
    return {str(option.prompt): not option.disabled for option in options}


async def open_form(app: RecordingApp, pilot) -> NewJobScreen:
    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
    form = app.screen
    assert isinstance(form, NewJobScreen)
    return form


def said_by(form: NewJobScreen, selector: str) -> str:
    return str(form.query_one(selector, Static).content)


@pytest.mark.parametrize("model", list(RESOLUTIONS_OF))
async def test_the_form_offers_and_sends_every_row(make_settings, make_veo, fake_vertex, model):
    rows = [row for row in ROWS if row[0] == model]
    settings = make_settings()
    fake_vertex.pending_polls = 0
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        app = RecordingApp(backend, settings)
        async with app.run_test(size=(120, 44)) as pilot:
            await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
            for _, resolution, seconds in rows:
                form = await open_form(app, pilot)
                form.query_one("#prompt", TextArea).text = f"form {model} {resolution} {seconds}"
                form.query_one("#model", ChoiceSelect).value = model
                form.query_one("#resolution", ChoiceSelect).value = resolution
                form.query_one("#duration", ChoiceSelect).value = seconds
                await pilot.pause()
                # Each choice of the row is offered, and the estimate is the price list's.
                assert offered(form, "#model")[model], model
                assert offered(form, "#resolution")[resolution], (model, resolution)
                assert offered(form, "#duration")[f"{seconds} s"], (model, resolution, seconds)
                assert not form.query_one("#form-rule", Static).display
                per_second = WITH_SOUND[(model, resolution)]
                assert f"{seconds} s × 1 video × ${per_second:.2f}/s (with sound, {resolution})" in said_by(
                    form, "#form-status"
                )
                await pilot.press("ctrl+s")
                await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
            await wait_for(lambda: len(fake_vertex.submits()) == len(rows), what="every row's submit")

    for _, resolution, seconds in rows:
        parameters, _ = sent_parameters(fake_vertex, f"form {model} {resolution} {seconds}")
        assert (parameters["resolution"], parameters["durationSeconds"]) == (resolution, seconds)
        assert sent_to(fake_vertex, f"form {model} {resolution} {seconds}") == model


async def test_the_form_greys_out_what_a_model_refuses_and_sends_none_of_it(
    make_settings, make_veo, fake_vertex, tmp_path
):
    reference = tmp_path / "reference.png"
    reference.write_bytes(png())
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        app = RecordingApp(backend, settings)
        async with app.run_test(size=(120, 44)) as pilot:
            await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
            form = await open_form(app, pilot)
            form.query_one("#prompt", TextArea).text = "lite in 4k"
            form.query_one("#model", ChoiceSelect).value = LITE
            await pilot.pause()
            assert offered(form, "#resolution") == {"720p": True, "1080p": True, "4k — not on this model": False}

            # Asked anyway: the form says why, and ctrl+s sends nothing.
            form.query_one("#resolution", ChoiceSelect).value = "4k"
            await pilot.pause()
            assert said_by(form, "#form-rule") == f"Not accepted: resolution: {LITE} renders 720p or 1080p, not 4k"
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is form and form.query_one("#resolution", ChoiceSelect).has_focus
            # With a model that makes 4k, Lite is greyed out beside it.
            form.query_one("#model", ChoiceSelect).value = FAST
            await pilot.pause()
            assert offered(form, "#model") == {STANDARD: True, FAST: True, f"{LITE} — no 4k": False}

            # Style references: no 3.1 model takes them, before and after a reference is given.
            form.query_one("#resolution", ChoiceSelect).value = "720p"
            for model in (STANDARD, FAST, LITE):
                form.query_one("#model", ChoiceSelect).value = model
                form.query_one("#reference-1", Input).value = ""
                await pilot.pause()
                assert offered(form, "#ref-type") == {"asset": True, "style — asset only": False}, model
                form.query_one("#reference-1", Input).value = str(reference)
                await pilot.pause()
                assert offered(form, "#ref-type") == {"asset": True, "style — asset only": False}, model
                # Reference images make 8 s videos.
                assert offered(form, "#duration") == {
                    "4 s — 8 s with references": False,
                    "6 s — 8 s with references": False,
                    "8 s": True,
                }
                form.query_one("#ref-type", ChoiceSelect).value = "style"
                await pilot.pause()
                assert said_by(form, "#form-rule") == (
                    f"Not accepted: reference_type: {model} takes asset reference images, not style "
                    "(style references were Veo 2's)"
                )
                await pilot.press("ctrl+s")
                await pilot.pause()
                assert app.screen is form and form.query_one("#ref-type", ChoiceSelect).has_focus
                form.query_one("#ref-type", ChoiceSelect).value = "asset"
    assert fake_vertex.requests == []
