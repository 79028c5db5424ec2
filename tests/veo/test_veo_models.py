"""Veo as Google offers it today, against the fake Vertex AI: every row of the rules table and
of the price table holds through the engine, REST (a real ``veotui serve``), the CLI and the
TUI's form; the request Google receives carries the resolution and the length asked and the
labels; what a model refuses is a 422 naming the model, and nothing reaches Google."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from PIL import Image
from textual.widgets import OptionList, Static, TextArea

from tests.server.harness import ServeProcess
from tests.support.waiting import wait_for, wait_until
from tests.tui.conftest import RecordingApp
from tests.veo.fake_vertex import FakeVertex
from veotui.backend.local import LocalBackend
from veotui.core.catalog import model_catalog
from veotui.core.errors import InvalidRequest
from veotui.core.job import Job, Status
from veotui.core.prices import DEFAULT_TABLE
from veotui.tui.form import ChoiceSelect, NewJobScreen
from veotui.tui.screen import MainScreen

STANDARD, FAST, LITE = "veo-3.1-generate-001", "veo-3.1-fast-generate-001", "veo-3.1-lite-generate-001"
#: The rules table: every model takes 1080p at 4, 6 and 8 s; 3.1 and Fast take 4k; Lite does not.
ROWS = [
    (model, resolution, seconds)
    for model, resolutions in ((STANDARD, ("1080p", "4k")), (FAST, ("1080p", "4k")), (LITE, ("1080p",)))
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
    [path] = {s.path.rsplit(":", 1)[0].rsplit("/", 1)[-1] for s in fake_vertex.submits() if LITE in s.path}
    assert path == LITE


async def test_the_user_label_is_cut_to_googles_label_rules(make_settings, make_veo, fake_vertex):
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await ended(backend, await backend.submit({"prompt": "labels"}, user="Ana.López@Example.COM"))
    _, labels = sent_parameters(fake_vertex, "labels")
    assert labels == {"veotui_job": job.job_id, "veotui_user": "ana_lópez_example_com"}


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
def veo_server(tmp_path, fake_vertex):
    """``veotui serve`` in express mode against the fake Vertex AI, stopped by its PID."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "VEOTUI_", "STORAGE_EMULATOR"))}
    env.update(
        {
            "VEOTUI_DATA_DIR": str(tmp_path / "data"),
            "VEOTUI_CONFIG": "/nonexistent/veotui.toml",
            "VEOTUI_POLL_INTERVAL": "0.05",
            "GOOGLE_API_KEY": "express-test-key",
            "GOOGLE_VERTEX_BASE_URL": fake_vertex.url,
        }
    )
    fake_vertex.pending_polls = 0
    server = ServeProcess(env)
    try:
        yield server.url
    finally:
        server.kill()


def cli(*args: str, remote: str | None = None, columns: int = 80) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "VEOTUI_"))}
    env["VEOTUI_CONFIG"] = "/nonexistent/veotui.toml"
    env["COLUMNS"] = str(columns)
    if remote:
        env["VEOTUI_REMOTE"] = remote
    return subprocess.run([sys.executable, "-m", "veotui", *args], env=env, capture_output=True, text=True, timeout=60)


def status(url: str, job_id: str) -> dict:
    return httpx.get(f"{url}/api/status/{job_id}").json()


def completed(url: str, job_id: str) -> Callable[[], bool]:
    return lambda: status(url, job_id)["status"] == "completed"


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
    refused = httpx.post(f"{veo_server}/api/generate", json={"prompt": "no", "model": LITE, "resolution": "4k"})
    assert refused.status_code == 422 and LITE in refused.json()["detail"]
    style = httpx.post(
        f"{veo_server}/api/generate",
        data={"prompt": "no", "reference_type": "style"},
        files={"reference_image": ("r.png", png(), "image/png")},
    )
    assert style.status_code == 422 and STANDARD in style.json()["detail"]

    for prompt, job_id in jobs.items():
        wait_until(completed(veo_server, job_id), what=prompt)
        parameters, labels = sent_parameters(fake_vertex, prompt)
        _, _, resolution, duration = prompt.split()
        assert (parameters["resolution"], parameters["durationSeconds"]) == (resolution, int(duration))
        assert labels == {"veotui_job": job_id, "veotui_user": "local"}
    assert not [s for s in fake_vertex.submits() if s.body["instances"][0]["prompt"] == "no"]


def test_get_api_models_is_the_engines_table(veo_server):
    answer = httpx.get(f"{veo_server}/api/models")
    assert answer.status_code == 200
    assert answer.json() == json.loads(json.dumps(model_catalog(DEFAULT_TABLE)))


def test_the_cli_submits_what_used_to_be_refused(veo_server, fake_vertex):
    # Once refused with "makes 8 s videos with 1080p, not 4".
    done = cli(
        "submit", "a pier at dawn", "--model", FAST, "--resolution", "1080p", "--duration", "4", remote=veo_server
    )
    assert done.returncode == 0, done.stderr
    four_k = cli("submit", "a pier at noon", "--resolution", "4k", "--duration", "6", remote=veo_server)
    assert four_k.returncode == 0, four_k.stderr
    lite = cli("submit", "no", "--model", LITE, "--resolution", "4k", remote=veo_server)
    assert lite.returncode == 2
    assert f"resolution: {LITE} renders 720p or 1080p, not 4k" in lite.stderr

    for prompt, job_id, asked in (
        ("a pier at dawn", done.stdout.strip(), ("1080p", 4)),
        ("a pier at noon", four_k.stdout.strip(), ("4k", 6)),
    ):
        wait_until(completed(veo_server, job_id), what=prompt)
        parameters, _ = sent_parameters(fake_vertex, prompt)
        assert (parameters["resolution"], parameters["durationSeconds"]) == asked
    assert not [s for s in fake_vertex.submits() if s.body["instances"][0]["prompt"] == "no"]


def test_veotui_models_asks_the_server_and_prints_json_or_a_table(veo_server):
    remote = cli("models", "--json", remote=veo_server)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == httpx.get(f"{veo_server}/api/models").json()
    people = cli("models", remote=veo_server)
    assert people.returncode == 0, people.stderr
    for text in (STANDARD, FAST, LITE, "preview", "0.60/0.40", "$0.30", "VERTEX-EXTEND", "2026-12-07", "sources:"):
        assert text in people.stdout
    overview = people.stdout.split("\n\n")[0]
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


async def test_the_form_offers_what_the_model_takes_and_sends_it(make_settings, make_veo, fake_vertex):
    settings = make_settings()
    fake_vertex.pending_polls = 0
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        app = RecordingApp(backend, settings)
        async with app.run_test(size=(120, 44)) as pilot:
            await wait_for(lambda: app.main_screen.loaded.is_set(), what="the first snapshot")
            await pilot.press("n")
            await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form")
            form = app.screen
            assert isinstance(form, NewJobScreen)
            form.query_one("#prompt", TextArea).text = "a lighthouse in 4k"
            form.query_one("#model", ChoiceSelect).value = LITE
            await pilot.pause()
            assert offered(form, "#resolution") == {"720p": True, "1080p": True, "4k — not on this model": False}

            form.query_one("#model", ChoiceSelect).value = FAST
            form.query_one("#resolution", ChoiceSelect).value = "4k"
            form.query_one("#duration", ChoiceSelect).value = 4
            await pilot.pause()
            assert offered(form, "#model") == {STANDARD: True, FAST: True, f"{LITE} — no 4k": False}
            assert "$1.20 — 4 s × 1 video × $0.30/s (with sound, 4k)" in str(
                form.query_one("#form-status", Static).content
            )
            await pilot.press("ctrl+s")
            await wait_for(lambda: isinstance(app.screen, MainScreen), what="the form to close")
            await wait_for(lambda: len(fake_vertex.submits()) == 1, what="the submit")
            parameters, _ = sent_parameters(fake_vertex, "a lighthouse in 4k")
            assert (parameters["resolution"], parameters["durationSeconds"]) == ("4k", 4)

            # A choice the model refuses: said in the form, and ctrl+s sends nothing.
            await pilot.press("n")
            await wait_for(lambda: isinstance(app.screen, NewJobScreen), what="the form again")
            form = app.screen
            form.query_one("#prompt", TextArea).text = "lite in 4k"
            form.query_one("#resolution", ChoiceSelect).value = "4k"
            form.query_one("#model", ChoiceSelect).value = LITE
            await pilot.pause()
            rule = form.query_one("#form-rule", Static)
            assert rule.display and f"resolution: {LITE} renders 720p or 1080p, not 4k" in str(rule.content)
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert isinstance(app.screen, NewJobScreen)
            assert form.query_one("#resolution", ChoiceSelect).has_focus
    assert len(fake_vertex.submits()) == 1
