"""Control characters against a real ``veotui serve``: refused in new prompts and user names
with the character and its position; stored ones (from before the check) reach the
terminal through ``veotui status`` and ``veotui jobs`` only as visible escapes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server.harness import ServeProcess, server_env
from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow

STORED_PROMPT = "before\x1b[2Jafter \u202eevil\x07"
STORED_USER = "mallory\x1b]0;owned\x07"
STORED_REASON = "maintenance\x1b]0;owned\x07\x1b[2J\r\nnow"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data = tmp_path_factory.mktemp("controls") / "data"
    store = SqliteStore(data / "veotui.db")
    # Written as an older veotui would have accepted it: the constructor does not validate.
    stored = Job(
        job_id=new_job_id(),
        status=Status.FAILED,
        request=JobRequest(prompt=STORED_PROMPT, negative_prompt="no\x9bthanks", user=STORED_USER),
        error="it said \x1b[31mred\x1b[0m",
    )
    store.insert_many([stored])
    store.set_paused(True, STORED_REASON)
    store.close()
    server = ServeProcess(server_env(data))
    try:
        yield server, stored.job_id
    finally:
        server.signal(signal.SIGTERM)
        server.wait(15)
        server.kill()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": "\x00"}, "prompt contains the control character U+0000 at position 1"),
        ({"prompt": "  a\x1b[2J"}, "prompt contains the control character U+001B at position 4"),
        ({"prompt": "bell\x07"}, "prompt contains the control character U+0007 at position 5"),
        ({"prompt": "csi\x9b"}, "prompt contains the control character U+009B at position 4"),
        ({"prompt": "a\u202eb"}, "prompt contains the bidirectional override U+202E at position 2"),
        ({"prompt": "a\u2066b"}, "prompt contains the bidirectional override U+2066 at position 2"),
        ({"prompt": "line\r\nbreak"}, "prompt contains the control character U+000D at position 5"),
        ({"prompt": "p", "negative_prompt": "x\x00"}, "negative_prompt contains the control character U+0000"),
        ({"prompt": "p", "user": "eve\tadams"}, "user contains the control character U+0009 at position 4"),
        ({"prompt": "p", "user": "eve\n"}, "user contains the control character U+000A at position 4"),
    ],
)
def test_a_control_character_is_refused_naming_it_and_its_position(served, body, message):
    server, _ = served
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        answer = client.post("/api/generate", json=body)
        assert answer.status_code == 422, answer.text
        assert message in answer.text
        # Nothing was queued for it.
        assert client.get("/api/jobs").json()["queued"] == []


def test_newline_and_tab_in_a_prompt_are_kept_as_they_are(served):
    server, _ = served
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        job = client.post("/api/generate", json={"prompt": "two\n\tlines"}).json()
        assert client.get(f"/api/status/{job['job_id']}").json()["prompt"] == "two\n\tlines"
        client.post(f"/api/cancel/{job['job_id']}")


def cli(server: ServeProcess, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "veotui", *args, "--remote", server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(Path("/nonexistent/veotui-data"), COLUMNS="250"),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_stored_control_sequences_reach_the_terminal_only_as_text(served):
    server, job_id = served
    shown = cli(server, "status", job_id[:8])
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown and "\x9b" not in shown
    assert "before\\x1b[2Jafter \\u202eevil\\x07" in shown
    assert "mallory\\x1b]0;owned\\x07" in shown
    assert "no\\x9bthanks" in shown
    assert "it said \\x1b[31mred\\x1b[0m" in shown
    listed = cli(server, "jobs")
    assert "\x1b" not in listed
    assert "before\\x1b[2Jafter" in listed
    # JSON escapes them its own way, and keeps the text exact.
    assert "\\u001b[2J" in cli(server, "status", job_id[:8], "--json")


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("\x1b]0;owned\x07\x1b[2J", "reason contains the control character U+001B at position 1"),
        ("line one\r\nline two", "reason contains the control character U+000D at position 9"),
        ("tab\there", "reason contains the control character U+0009 at position 4"),
        ("csi\x9b2J", "reason contains the control character U+009B at position 4"),
        ("a\u202eb", "reason contains the bidirectional override U+202E at position 2"),
    ],
)
def test_a_pause_reason_with_a_control_character_is_refused(served, reason, message):
    server, _ = served
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        before = client.get("/api/queue").json()
        answer = client.post("/api/queue/pause", json={"reason": reason})
        assert answer.status_code == 422, answer.text
        assert message in answer.json()["detail"]
        assert client.get("/api/queue").json() == before


def test_a_stored_pause_reason_reaches_the_terminal_only_as_text(served):
    server, _ = served
    shown = cli(server, "queue", "status")
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
    assert "paused: maintenance\\x1b]0;owned\\x07\\x1b[2J\\r\\nnow (" in shown
    assert "\\u001b]0;owned" in cli(server, "queue", "status", "--json")


def test_a_request_path_with_escapes_reaches_the_log_and_veotui_logs_only_as_text(tmp_path):
    data = tmp_path / "data"
    server = ServeProcess(server_env(data), "--log-level", "debug")
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            client.get("/%1b]0;owned%07%1b[2J%c2%9b")
            client.post("/api/generate", json={"prompt": "fine", "user": "x\x1b[2J"})
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
        text = (data / "logs" / "veotui.log").read_text()
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
        assert "GET /\\x1b]0;owned\\x07\\x1b[2J\\x9b 404" in text
        # Written raw by an older veotui: the verb shows it as text.
        with (data / "logs" / "veotui.log").open("a") as log:
            log.write("2026-11-30T15:00:00.000Z INFO    log old \x1b]0;owned\x07 \x9b2J \u202eevil\n")
        env = server_env(data)
        for args in ((), ("--json",)):
            printed = subprocess.run(
                [sys.executable, "-m", "veotui", "logs", *args], env=env, capture_output=True, text=True, timeout=60
            )
            assert printed.returncode == 0, printed.stderr
            out = printed.stdout
            assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
            assert "old" in out
    finally:
        server.kill()
