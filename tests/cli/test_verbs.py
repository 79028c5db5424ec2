"""The client verbs as real ``python -m veotui`` subprocesses against a real server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from veotui.server.running import bind
from veotui.settings import load_settings

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TOKEN = "cli-s3cret"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    settings = load_settings(
        env={**FAST_ENV, "VEOTUI_DATA_DIR": str(data_dir), "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD": "off"}
    )
    with server_thread(settings.replace(token=TOKEN)) as running:
        yield running


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    """Operations that take a minute: jobs stay where a test puts them."""
    data_dir = tmp_path_factory.mktemp("cli-slow") / "data"
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(data_dir), "VEOTUI_SIM_SECONDS": "60"})
    with server_thread(settings.replace(token=TOKEN)) as running:
        yield running


def veotui(
    *args: str, remote: str | None = None, token: str | None = TOKEN, timeout: float = 60
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEOTUI_")}
    env["VEOTUI_CONFIG"] = "/nonexistent/veotui-test-config.toml"
    if remote:
        env["VEOTUI_REMOTE"] = remote
    if token:
        env["VEOTUI_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "veotui", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_submit_wait_status_jobs_download(server, tmp_path):
    done = veotui(
        "submit",
        "a paper boat on a pond",
        "--count",
        "2",
        "--duration",
        "4",
        "--seed",
        "9",
        "--wait",
        remote=server.url,
    )
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert UUID.match(job_id)
    assert "100%" in done.stderr and "completed: 2 video(s)" in done.stderr

    status = veotui("status", job_id[:7], "--json", remote=server.url)
    job = json.loads(status.stdout)
    assert (job["job_id"], job["status"], job["number_of_videos"], job["duration_seconds"], job["seed"]) == (
        job_id,
        "completed",
        2,
        4,
        9,
    )
    human = veotui("status", job_id[:7], remote=server.url).stdout
    assert job_id in human and "completed" in human and "timeline:" in human and "generating" in human

    lists = json.loads(veotui("jobs", "--json", remote=server.url).stdout)
    assert set(lists) >= {"processing", "queued", "history"}
    assert job_id in [j["job_id"] for j in lists["history"]]
    assert job_id[:8] in veotui("jobs", remote=server.url).stdout

    saved = veotui("download", job_id[:8], "-o", str(tmp_path / "out"), remote=server.url)
    assert saved.returncode == 0, saved.stderr
    zip_path = Path(saved.stdout.strip())
    assert zip_path == tmp_path / "out" / f"veotui_{job_id[:8]}_videos.zip"
    assert zipfile.ZipFile(zip_path).namelist() == ["generated_video_1.mp4", "generated_video_2.mp4"]
    video = veotui("download", job_id[:8], "-o", str(tmp_path), "--video", "2", remote=server.url)
    assert Path(video.stdout.strip()).read_bytes()[4:8] == b"ftyp"
    missing = veotui("download", job_id[:8], "-o", str(tmp_path), "--video", "3", remote=server.url)
    assert missing.returncode == 1 and "has no video 3" in one_line(missing.stderr)
    (tmp_path / "a-file").write_text("not a directory")
    blocked = veotui("download", job_id[:8], "-o", str(tmp_path / "a-file" / "sub"), remote=server.url)
    assert blocked.returncode == 1 and one_line(blocked.stderr).startswith("veotui: cannot save into ")


def test_download_says_the_job_will_be_removed_and_status_says_why_it_was(tmp_path):
    data_dir = tmp_path / "data"
    settings = load_settings(
        env={**FAST_ENV, "VEOTUI_DATA_DIR": str(data_dir), "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD": "3"}
    )
    with server_thread(settings.replace(token=TOKEN)) as running:
        done = veotui("submit", "a kite", "--duration", "4", "--wait", remote=running.url)
        assert done.returncode == 0, done.stderr
        job_id = done.stdout.strip()
        saved = veotui("download", job_id[:8], "-o", str(tmp_path / "out"), remote=running.url)
        assert saved.returncode == 0, saved.stderr
        assert re.search(r"will be removed in [0-3] s", saved.stderr), saved.stderr
        assert "auto_delete_after_download = off" in saved.stderr
        deadline = time.monotonic() + 60
        while (status := veotui("status", job_id[:8], remote=running.url)).returncode == 0:
            assert time.monotonic() < deadline, "the job was not auto-deleted"
            time.sleep(0.5)
        assert status.returncode == 1
        assert f"job {job_id} was deleted after download at " in status.stderr, status.stderr
        answer = httpx.get(f"{running.url}/api/status/{job_id}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 404 and "was deleted after download at" in answer.json()["detail"]


def test_submit_with_an_image(server, tmp_path):
    image = tmp_path / "frame.webp"
    Image.new("RGB", (32, 18), (250, 120, 0)).save(image, "WEBP")
    result = veotui("submit", "pan across", "--image", str(image), remote=server.url)
    assert result.returncode == 0, result.stderr
    job = json.loads(veotui("status", result.stdout.strip(), "--json", remote=server.url).stdout)
    assert job["has_image"] is True


def test_submit_with_the_veo_31_flags(server, tmp_path):
    pictures = []
    for n, colour in enumerate([(250, 0, 0), (0, 250, 0), (0, 0, 250)]):
        pictures.append(tmp_path / f"p{n}.png")
        Image.new("RGB", (32, 18), colour).save(pictures[-1], "PNG")

    def status(job_id: str) -> dict:
        return json.loads(veotui("status", job_id, "--json", remote=server.url).stdout)

    frames = veotui(
        "submit",
        "a door opens",
        "--image",
        str(pictures[0]),
        "--last-frame",
        str(pictures[1]),
        "--no-audio",
        "--person-generation",
        "dont_allow",
        "--enhance-prompt",
        "--wait",
        remote=server.url,
    )
    assert frames.returncode == 0, frames.stderr
    job = status(frames.stdout.strip())
    assert (job["has_last_frame"], job["generate_audio"], job["person_generation"], job["enhance_prompt"]) == (
        True,
        False,
        "dont_allow",
        True,
    )

    refs = [arg for picture in pictures for arg in ("--reference", str(picture))]
    made = veotui("submit", "a mug", *refs, "--reference-type", "asset", "--audio", remote=server.url)
    assert made.returncode == 0, made.stderr
    job = status(made.stdout.strip())
    assert (job["reference_count"], job["reference_type"], job["generate_audio"]) == (3, "asset", True)

    source = frames.stdout.strip()
    extended = veotui("submit", "and then", "--extend", f"{source[:8]}:1", "--no-enhance-prompt", remote=server.url)
    assert extended.returncode == 0, extended.stderr
    job = status(extended.stdout.strip())
    assert job["extends"] == {"job_id": source, "video": 1, "source_seconds": 8.0, "source_aspect_ratio": "16:9"}
    assert job["enhance_prompt"] is False
    assert extended.stderr == ""  # the same aspect ratio: no caution
    shown = veotui("status", extended.stdout.strip()[:8], remote=server.url)
    assert shown.returncode == 0, shown.stderr
    assert "about 15 s (the 8 s video and 7 s more)" in shown.stdout

    # No Google page says an extension keeps its video's aspect ratio: sent, with a caution.
    upright = veotui("submit", "and up", "--extend", source[:8], "--aspect-ratio", "9:16", remote=server.url)
    assert upright.returncode == 0, upright.stderr
    assert status(upright.stdout.strip())["aspect_ratio"] == "9:16"
    assert one_line(upright.stderr) == (
        "caution: the extension asks for 9:16 of a 16:9 video, and no Google page read says Veo extends a video "
        "into another aspect ratio; if Google refuses the job, it answers 400 and charges nothing"
    )

    # Only third parties say Lite takes no reference images: sent, with a caution.
    lite = veotui("submit", "a mug", "--model", "veo-3.1-lite-generate-001", refs[0], refs[1], remote=server.url)
    assert lite.returncode == 0, lite.stderr
    assert UUID.match(lite.stdout.strip())
    assert one_line(lite.stderr).startswith("caution: third-party providers say veo-3.1-lite-generate-001")

    refused = veotui("submit", "x", "--last-frame", str(pictures[1]), remote=server.url)
    assert refused.returncode == 2 and "last_frame needs an input image" in one_line(refused.stderr)
    too_many = veotui("submit", "x", *refs, "--reference", str(pictures[0]), remote=server.url)
    assert too_many.returncode == 2 and "at most 3 times" in one_line(too_many.stderr)
    bad_extend = veotui("submit", "x", "--extend", f"{source[:8]}:two", remote=server.url)
    assert bad_extend.returncode == 2 and "JOB:N" in one_line(bad_extend.stderr)


def test_wait_exits_1_when_the_job_fails(server):
    result = veotui("submit", "doomed [fail]", "--wait", remote=server.url)
    assert result.returncode == 1
    assert UUID.match(result.stdout.strip())
    assert "failed:" in result.stderr.strip().splitlines()[-1]


def test_cancel_retry_delete_with_prefixes(slow_server):
    server = slow_server
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, trust_env=False) as client:
        # Two long jobs hold the slots, so the third stays queued while the verbs act on it.
        for n in range(2):
            client.post("/api/generate", json={"prompt": f"blocker {n}"})
        job_id = client.post("/api/generate", json={"prompt": "third"}).json()["job_id"]
    cancelled = veotui("cancel", job_id[:10], remote=server.url)
    assert (cancelled.returncode, cancelled.stdout.strip()) == (0, f"cancelled {job_id}")
    again = veotui("cancel", job_id[:10], remote=server.url)
    assert again.returncode == 1 and "already ended" in one_line(again.stderr)
    retried = veotui("retry", job_id[:10], remote=server.url)
    assert retried.returncode == 0 and retried.stdout.startswith(f"queued {job_id} again")
    deleted = veotui("delete", job_id, remote=server.url)
    assert (deleted.returncode, deleted.stdout.strip()) == (0, f"deleted {job_id}")
    gone = veotui("status", job_id, remote=server.url)
    assert gone.returncode == 1 and "no job id starts with" in one_line(gone.stderr)


@pytest.mark.parametrize(
    "args, message, code",
    [
        (("status", "zz"), "is not a job id or the start of one", 1),
        (("submit", "p", "--image", "/nonexistent/cat.png"), "cannot read the image /nonexistent/cat.png", 1),
        # A bad value exits 2, whether argparse or the server refuses it.
        (("submit", "x" * 4001), "4000", 2),
        (("submit", "p", "--seed", "-1"), "seed", 2),
    ],
)
def test_failures_are_one_line_and_exit_1_or_2_for_a_bad_value(server, args, message, code):
    result = veotui(*args, remote=server.url)
    assert result.returncode == code
    line = one_line(result.stderr)
    assert line.startswith("veotui: ") and message in line
    assert "Traceback" not in result.stderr


def test_a_wrong_or_missing_token_is_explained(server):
    result = veotui("jobs", remote=server.url, token=None)
    assert result.returncode == 1 and "needs a token" in one_line(result.stderr)
    result = veotui("jobs", "--token", "wrong", remote=server.url, token=None)
    assert result.returncode == 1 and "not one this server accepts" in one_line(result.stderr)


def test_nothing_listening_says_how_to_start_a_server():
    probe = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()
    result = veotui("jobs", remote=url)
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"veotui: no veotui server is listening at {url}; start one with `veotui serve` "
        "or point --remote (VEOTUI_REMOTE) at one"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("submit",),
        ("submit", "p", "--count", "9"),
        ("submit", "p", "--duration", "5"),
        ("status",),
        ("jobs", "--limit", "x"),
        ("download", "abc", "--video", "one"),
    ],
)
def test_usage_errors_exit_2(args):
    result = veotui(*args, remote="http://127.0.0.1:9")
    assert result.returncode == 2
    assert "usage: veotui" in result.stderr


def test_status_jobs_and_retry_show_the_cost_and_what_a_retry_does(server):
    from veotui.core.job import RETRY_REFETCHES, RETRY_RESUBMITS

    stranded = veotui("submit", "made but [unfetchable]", "--count", "2", "--duration", "4", remote=server.url)
    errored = veotui("submit", "broken [fail]", remote=server.url)
    stranded_id, errored_id = stranded.stdout.strip(), errored.stdout.strip()
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, trust_env=False) as client:
        for job_id in (stranded_id, errored_id):
            for _ in range(600):
                job = client.get(f"/api/status/{job_id}").json()
                if job["status"] == "failed":
                    break
                time.sleep(0.05)
            assert job["status"] == "failed"
        cost = client.get(f"/api/status/{stranded_id}").json()["estimated_cost_usd"]
    assert cost and cost > 0

    status = veotui("status", stranded_id[:8], remote=server.url).stdout
    assert f"${cost:,.2f} (estimate)" in status and RETRY_REFETCHES in status
    assert RETRY_RESUBMITS in veotui("status", errored_id[:8], remote=server.url).stdout
    assert f"${cost:,.2f}" in veotui("jobs", remote=server.url).stdout

    reused = veotui("retry", stranded_id[:8], remote=server.url)
    assert reused.returncode == 0 and one_line(reused.stdout).endswith(RETRY_REFETCHES)
    anew = veotui("retry", errored_id[:8], remote=server.url)
    assert anew.returncode == 0 and one_line(anew.stdout).endswith(RETRY_RESUBMITS)


def test_jobs_in_a_pipe_is_one_line_per_job_with_finished_time_and_error(server):
    long_prompt = "a very long prompt\twith a tab " + "and many words " * 30
    done = veotui("submit", long_prompt, "--wait", remote=server.url)
    failed = veotui("submit", "doomed [fail]", "--wait", remote=server.url)
    assert done.returncode == 0 and failed.returncode == 1
    lines = veotui("jobs", remote=server.url).stdout.splitlines()
    assert lines[0].split("\t") == [
        "job_id",
        "status",
        "progress",
        "videos",
        "model",
        "cost",
        "finished",
        "error",
        "prompt",
    ]
    rows = {cells[0]: cells for cells in (line.split("\t") for line in lines[1:])}
    assert all(len(cells) == 9 for cells in rows.values())
    ok, bad = rows[done.stdout.strip()], rows[failed.stdout.strip()]
    assert ok[1] == "completed" and ok[6].endswith("Z") and ok[7] == "-"
    assert ok[8] == long_prompt.strip().replace("\t", "\\t")
    assert bad[1] == "failed" and bad[6].endswith("Z") and bad[7] not in ("", "-")


def test_a_client_verb_ignores_a_server_setting_it_cannot_parse(server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEOTUI_")}
    env.update(
        VEOTUI_CONFIG="/nonexistent/veotui-test-config.toml",
        VEOTUI_REMOTE=server.url,
        VEOTUI_TOKEN=TOKEN,
        VEOTUI_MAX_CONCURRENT="two",
    )
    result = subprocess.run(
        [sys.executable, "-m", "veotui", "jobs"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("job_id\tstatus")
    serve = subprocess.run(
        [sys.executable, "-m", "veotui", "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert serve.returncode == 2 and "VEOTUI_MAX_CONCURRENT" in serve.stderr
