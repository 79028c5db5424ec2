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
