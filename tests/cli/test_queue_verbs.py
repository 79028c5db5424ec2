"""``veotui queue`` and ``veotui move`` as real subprocesses against a real server."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.cli.test_verbs import TOKEN, one_line, veotui
from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from veotui.settings import load_settings


@pytest.fixture
def server(tmp_path):
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "data")})
    with server_thread(settings.replace(token=TOKEN)) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, trust_env=False) as client:
        yield client


def queued(client: httpx.Client) -> list[str]:
    return [job["job_id"] for job in client.get("/api/jobs").json()["queued"]]


def test_queue_pause_status_resume(server, client):
    paused = veotui("queue", "pause", "the render farm is down", remote=server.url)
    assert (paused.returncode, paused.stdout.strip()) == (
        0,
        "paused: the render farm is down (0 jobs queued); today $0.00 (simulated: nothing is charged)",
    )
    job_id = client.post("/api/generate", json={"prompt": "waits"}).json()["job_id"]
    status = veotui("queue", "status", remote=server.url)
    assert status.stdout.startswith("paused: the render farm is down (1 job queued); today $0.00")
    state = json.loads(veotui("queue", "status", "--json", remote=server.url).stdout)
    assert (state["paused"], state["reason"], state["length"]) == (True, "the render farm is down", 1)
    assert client.get(f"/api/status/{job_id}").json()["status"] == "queued"
    resumed = veotui("queue", "resume", remote=server.url)
    assert resumed.returncode == 0 and resumed.stdout.startswith("running (")
    assert client.get("/api/queue").json()["paused"] is False


def test_queue_status_shows_the_budget_and_resume_says_it_is_set_aside(tmp_path):
    env = {**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "budget"), "VEOTUI_DAILY_BUDGET_USD": "2"}
    with server_thread(load_settings(env=env).replace(token=TOKEN)) as server:
        with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, trust_env=False) as client:
            client.post("/api/generate", json={"prompt": "too dear for the budget"})
            deadline = time.monotonic() + 20
            while not client.get("/api/queue").json()["by_budget"]:
                assert time.monotonic() < deadline, "the budget did not pause the queue"
                time.sleep(0.05)
        status = veotui("queue", "status", remote=server.url)
        assert status.stdout.strip() == (
            "paused: daily budget $2.00: $0.00 spent, next job $3.20 (1 job queued);"
            " today $0.00 of $2.00 (simulated: nothing is charged)"
        )
        resumed = veotui("queue", "resume", remote=server.url)
        assert resumed.stdout.strip().endswith("the daily budget is set aside until 00:00 UTC")


def test_move_top_bottom_up_down_and_positions(server, client):
    client.post("/api/queue/pause")
    a, b, c = [client.post("/api/generate", json={"prompt": p}).json()["job_id"] for p in "abc"]
    top = veotui("move", c[:8], "top", remote=server.url)
    assert (top.returncode, top.stdout.strip()) == (0, f"{c} is now at position 1")
    assert queued(client) == [c, a, b]
    assert veotui("move", c[:8], "down", remote=server.url).stdout.strip().endswith("position 2")
    assert veotui("move", b[:8], "up", remote=server.url).returncode == 0
    assert queued(client) == [a, b, c]
    assert veotui("move", a[:8], "bottom", remote=server.url).returncode == 0
    assert veotui("move", a[:8], "2", remote=server.url).stdout.strip() == f"{a} is now at position 2"
    assert queued(client) == [b, a, c]


def test_move_failures_are_one_line(server, client):
    client.post("/api/queue/pause")
    job_id = client.post("/api/generate", json={"prompt": "gone soon"}).json()["job_id"]
    client.post(f"/api/cancel/{job_id}")
    refused = veotui("move", job_id[:8], "top", remote=server.url)
    assert refused.returncode == 1 and "only queued jobs can be moved" in one_line(refused.stderr)
    for where in ("0", "sideways", "-1"):
        usage = veotui("move", job_id[:8], where, remote=server.url)
        assert usage.returncode == 2 and "top, bottom, up, down or a position" in usage.stderr
    unknown = veotui("queue", "sideways", remote=server.url)
    assert unknown.returncode == 2 and "usage: veotui queue" in unknown.stderr


# -- bulk verbs -------------------------------------------------------------------------------


@pytest.fixture
def slow_server(tmp_path):
    """One-minute operations: processing jobs stay processing while a test acts."""
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "slow"), "VEOTUI_SIM_SECONDS": "60"})
    with server_thread(settings.replace(token=TOKEN)) as running:
        yield running


def statuses(client: httpx.Client) -> dict[str, str]:
    lists = client.get("/api/jobs", params={"limit": 1000}).json()
    return {job["job_id"]: job["status"] for panel in ("processing", "queued", "history") for job in lists[panel]}


def test_cancel_queued_then_all_ask_unless_yes(slow_server):
    server = slow_server
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, trust_env=False) as client:
        ids = [client.post("/api/generate", json={"prompt": f"job {n}"}).json()["job_id"] for n in range(5)]
        running, waiting = ids[:2], ids[2:]

        def processing() -> bool:
            return all(statuses(client)[j] not in ("queued",) for j in running)

        deadline = time.monotonic() + 20
        while not processing():
            assert time.monotonic() < deadline, "the first two jobs did not start"
            time.sleep(0.05)
        refused = veotui("cancel", "--queued", remote=server.url)
        assert refused.returncode == 1 and "add --yes" in one_line(refused.stderr)
        assert all(statuses(client)[j] == "queued" for j in waiting)
        done = veotui("cancel", "--queued", "--yes", remote=server.url)
        assert done.returncode == 0, done.stderr
        assert sorted(done.stdout.split()) == sorted(waiting)
        now = statuses(client)
        assert all(now[j] == "cancelled" for j in waiting) and all(now[j] != "cancelled" for j in running)
        everything = veotui("cancel", "--all", "--yes", remote=server.url)
        assert sorted(everything.stdout.split()) == sorted(running)
        assert set(statuses(client).values()) == {"cancelled"}
        nothing = veotui("cancel", "--all", "--yes", remote=server.url)
        assert nothing.returncode == 0 and "no queued and processing jobs" in nothing.stderr


def test_delete_finished_removes_the_history_only(server, client):
    ended = [client.post("/api/generate", json={"prompt": f"ends {n}"}).json()["job_id"] for n in range(3)]
    for job_id in ended:
        client.post(f"/api/cancel/{job_id}")
    client.post("/api/queue/pause")
    kept = client.post("/api/generate", json={"prompt": "stays queued"}).json()["job_id"]
    refused = veotui("delete", "--finished", remote=server.url)
    assert refused.returncode == 1 and "add --yes" in one_line(refused.stderr)
    done = veotui("delete", "--finished", "--yes", remote=server.url)
    assert done.returncode == 0 and sorted(done.stdout.split()) == sorted(ended)
    assert statuses(client) == {kept: "queued"}
    again = veotui("delete", "--finished", "--yes", remote=server.url)
    assert again.returncode == 0 and "the history is empty" in again.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("cancel",), "a JOB, --queued or --all"),
        (("cancel", "abc", "--queued"), "a JOB, --queued or --all"),
        (("cancel", "--queued", "--all"), "a JOB, --queued or --all"),
        (("delete",), "a JOB or --finished"),
        (("delete", "abc", "--finished"), "a JOB or --finished"),
        (("submit", "a prompt", "--from", "jobs.jsonl"), "a PROMPT or --from FILE"),
        (("submit", "--from", "jobs.jsonl", "--wait"), "--wait follows one job"),
    ],
)
def test_bulk_usage_errors_exit_2(args, message):
    result = veotui(*args, remote="http://127.0.0.1:9")
    assert result.returncode == 2 and "usage: veotui" in result.stderr and message in result.stderr


def test_submit_from_a_file_queues_every_line_in_order(server, client, tmp_path):
    from PIL import Image

    (tmp_path / "frames").mkdir()
    Image.new("RGB", (32, 18), (0, 90, 200)).save(tmp_path / "frames" / "first.png")
    batch = tmp_path / "jobs.jsonl"
    batch.write_text(
        "\n".join(
            [
                json.dumps({"prompt": "one", "duration_seconds": 4}),
                "",
                json.dumps({"prompt": "two", "image": "frames/first.png", "number_of_videos": 2}),
                json.dumps({"prompt": "three", "seed": 5}),
            ]
        )
        + "\n"
    )
    client.post("/api/queue/pause")
    result = veotui("submit", "--from", str(batch), remote=server.url)
    assert result.returncode == 0, result.stderr
    ids = result.stdout.split()
    assert len(ids) == 3 and "queued 3 job(s)" in result.stderr
    jobs = [client.get(f"/api/status/{job_id}").json() for job_id in ids]
    assert [(j["prompt"], j["queue_position"]) for j in jobs] == [("one", 1), ("two", 2), ("three", 3)]
    assert (jobs[0]["duration_seconds"], jobs[1]["has_image"], jobs[1]["number_of_videos"], jobs[2]["seed"]) == (
        4,
        True,
        2,
        5,
    )


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"prompt": ""}', "line 2: prompt"),
        ('{"prompt": "x", "colour": "blue"}', "line 2: unknown field 'colour'"),
        ("not json", "line 2: not valid JSON"),
        ('["a list"]', "line 2: a line must be a JSON object"),
        ('{"prompt": "x", "image": "missing.png"}', "line 2: image: cannot read missing.png"),
        ('{"prompt": "x", "image": "broken.png"}', "line 2: image:"),
        ('{"prompt": "x", "duration_seconds": 5}', "line 2: duration_seconds"),
    ],
)
def test_submit_from_stops_at_the_first_bad_line_with_nothing_queued(server, client, tmp_path, bad_line, message):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but not really")
    batch = tmp_path / "jobs.jsonl"
    batch.write_text(json.dumps({"prompt": "fine"}) + "\n" + bad_line + "\n" + json.dumps({"prompt": "x"}) + "\n")
    result = veotui("submit", "--from", str(batch), remote=server.url)
    assert result.returncode == 2  # a bad value, as the same field given to `submit` is
    line = one_line(result.stderr)
    assert message in line and "nothing was submitted" in line and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert statuses(client) == {}


def test_submit_from_a_missing_or_empty_file(server, tmp_path):
    missing = veotui("submit", "--from", str(tmp_path / "nope.jsonl"), remote=server.url)
    assert missing.returncode == 1 and "cannot read" in one_line(missing.stderr)
    (tmp_path / "empty.jsonl").write_text("\n\n")
    empty = veotui("submit", "--from", str(tmp_path / "empty.jsonl"), remote=server.url)
    assert empty.returncode == 1 and "holds no jobs" in one_line(empty.stderr)
