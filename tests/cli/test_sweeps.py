"""``submit --vary`` and the ``--group`` verbs as real ``python -m veotui`` subprocesses
against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import httpx
import pytest

from tests.cli.test_verbs import TOKEN, UUID
from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from tests.support.waiting import wait_until
from veotui.settings import load_settings

FAST = "veo-3.1-fast-generate-001"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("sweeps") / "data"
    settings = load_settings(
        env={**FAST_ENV, "VEOTUI_DATA_DIR": str(data_dir), "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD": "off"}
    )
    with server_thread(settings.replace(token=TOKEN)) as running:
        yield running


def veotui(server, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VEOTUI_")}
    clean.update(VEOTUI_CONFIG="/nonexistent/veotui-test-config.toml", VEOTUI_REMOTE=server.url, VEOTUI_TOKEN=TOKEN)
    clean.update({f"VEOTUI_{name.upper()}": value for name, value in env.items()})
    return subprocess.run(
        [sys.executable, "-m", "veotui", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def group_of(server, group: str) -> list[dict]:
    answer = httpx.get(f"{server.url}/api/jobs", params={"group": group}, headers={"authorization": f"Bearer {TOKEN}"})
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    lists = answer.json()
    return sorted(lists["processing"] + lists["queued"] + lists["history"], key=lambda j: j["queue_seq"])


def test_vary_queues_the_cross_product_with_the_prompt_filled_in(server):
    done = veotui(
        server, "submit", "a {animal} at dawn", "--vary", "animal=fox,owl", "--vary", "seed=1,2", "--model", FAST
    )
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    assert len(ids) == 4 and all(UUID.match(i) for i in ids)
    # Four Fast jobs of 8 s at $0.10 a second.
    assert "4 jobs, estimated $3.20 in all" in done.stderr
    group = done.stderr.split("group ", 1)[1].split(":", 1)[0]
    jobs = group_of(server, group)
    assert [j["job_id"] for j in jobs] == ids
    assert [(j["prompt"], j["seed"]) for j in jobs] == [
        ("a fox at dawn", 1),
        ("a fox at dawn", 2),
        ("a owl at dawn", 1),
        ("a owl at dawn", 2),
    ]
    assert {j["group"] for j in jobs} == {group}


def test_every_job_is_checked_before_any_is_queued(server):
    bad = veotui(server, "submit", "p", "--vary", "seed=1,two", "--group", "never", "--model", FAST)
    assert bad.returncode != 0
    assert "job 2 of the sweep: seed must be a whole number" in bad.stderr and "nothing was queued" in bad.stderr
    assert group_of(server, "never") == []
    for args, words in (
        (("a {animal}", "--vary", "seed=1,2"), "no --vary animal"),
        (("p", "--vary", "colour=red,blue"), "not a job field"),
        (("p", "--vary", "seed=1,1"), "given twice"),
        (("p", "--vary", "prompt=a,b"), "cannot be varied"),
    ):
        refused = veotui(server, "submit", *args, "--group", "never")
        assert refused.returncode != 0 and words in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert group_of(server, "never") == []


def test_a_sweep_above_the_limit_asks_first(server):
    # Four jobs of the default model: 4 x 8 s x $0.40 = $12.80, above the $10 default.
    asked = veotui(server, "submit", "p", "--vary", "seed=1,2,3,4", "--group", "dear")
    assert asked.returncode != 0
    assert "estimated $12.80" in asked.stderr and "add --yes" in asked.stderr
    assert group_of(server, "dear") == []
    raised = veotui(server, "submit", "p", "--vary", "seed=1,2,3,4", "--group", "dear", confirm_over_usd="20")
    assert raised.returncode == 0, raised.stderr
    assert len(group_of(server, "dear")) == 4
    forced = veotui(server, "submit", "p", "--vary", "seed=5,6,7,8", "--group", "dearer", "--yes")
    assert forced.returncode == 0 and len(forced.stdout.split()) == 4


def test_cancel_download_and_delete_a_group(server, tmp_path):
    done = veotui(server, "submit", "clip {n}", "--vary", "n=1,2", "--group", "clips", "--model", FAST)
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    wait_until(lambda: {j["status"] for j in group_of(server, "clips")} == {"completed"}, what="the group to complete")
    cancelled = veotui(server, "cancel", "--group", "clips")
    assert cancelled.returncode == 0 and cancelled.stdout == ""
    assert "cancelled 0 job(s) of group clips" in cancelled.stderr
    assert all(f"left {job_id}: already completed" in cancelled.stderr for job_id in ids)
    saved = veotui(server, "download", "--group", "clips", "-o", str(tmp_path))
    assert saved.returncode == 0, saved.stderr
    with zipfile.ZipFile(saved.stdout.strip()) as archive:
        assert sorted(archive.namelist()) == sorted(f"{job_id}/generated_video_1.mp4" for job_id in ids)
    refused = veotui(server, "delete", "--group", "clips")
    assert refused.returncode != 0 and "add --yes" in refused.stderr
    deleted = veotui(server, "delete", "--group", "clips", "--yes")
    assert deleted.returncode == 0 and sorted(deleted.stdout.split()) == sorted(ids)
    assert group_of(server, "clips") == []
    gone = veotui(server, "download", "--group", "clips", "-o", str(tmp_path))
    assert gone.returncode != 0 and "group 'clips' has no jobs" in gone.stderr
