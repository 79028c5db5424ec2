"""The real ``veotui`` console script in a real terminal (tmux on a private socket): submit
a job through the form with keys, and watch it go through the panels into History."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.store.sqlite import SqliteStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

VEOTUI = Path(sys.executable).with_name("veotui")


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10, check=True
        )
        return result.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "tui")

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} never appeared on the screen:\n{screen}")
            time.sleep(0.1)


@pytest.fixture
def tmux(tmp_path: Path):
    yield from tmux_session(tmp_path)


def tmux_session(tmp_path: Path, *args: str, size: tuple[int, int] = (100, 30)):
    """``veotui ARGS`` in a tmux session of ``size`` (columns, rows) on a private socket."""
    server = Tmux(f"veotui-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    env = {
        "VEOTUI_DATA_DIR": str(tmp_path / "data"),
        "VEOTUI_DOWNLOADS_DIR": str(tmp_path / "downloads"),
        "VEOTUI_GENERATOR": "sim",
        "VEOTUI_SIM_SECONDS": "1",
        "VEOTUI_CONFIG": "/nonexistent/veotui.toml",
        "TERM": "xterm-256color",
    }
    command = " ".join([*(f"{k}={v}" for k, v in env.items()), str(VEOTUI), *args])
    server("new-session", "-d", "-s", "tui", "-x", str(size[0]), "-y", str(size[1]), command)
    socket_path = Path(server("display-message", "-p", "#{socket_path}").strip())
    try:
        yield server
    finally:
        subprocess.run(["tmux", "-L", server.socket, "kill-server"], capture_output=True, timeout=10)
        socket_path.unlink(missing_ok=True)  # tmux leaves its socket file behind


def test_submit_a_job_and_watch_it_reach_history(tmux: Tmux):
    tmux.wait_for("simulator (sim)")
    tmux("send-keys", "-t", "tui", "n")
    tmux.wait_for("New job")
    time.sleep(1.0)  # the form takes focus once it is mounted
    tmux("send-keys", "-t", "tui", "-l", "a kite over the dunes")
    tmux.wait_for("a kite over the dunes")
    tmux("send-keys", "-t", "tui", "C-s")
    screen = tmux.wait_for("✓ completed")
    assert "a kite over the dunes" in screen
    assert "History 1–1 of 1" in screen
    tmux("send-keys", "-t", "tui", "q")
    deadline = time.monotonic() + 10
    while subprocess.run(["tmux", "-L", tmux.socket, "has-session", "-t", "tui"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "q did not quit"
        time.sleep(0.1)


def test_a_stored_control_sequence_shows_as_text(tmp_path: Path):
    # Written as an older veotui would have accepted it: the constructor does not validate.
    store = SqliteStore(tmp_path / "data" / "veotui.db")
    store.insert_many(
        [Job(job_id=new_job_id(), status=Status.CANCELLED, request=JobRequest(prompt="clear\x1b[2Jscreen\x07"))]
    )
    store.close()
    session = tmux_session(tmp_path)
    tmux = next(session)
    try:
        screen = tmux.wait_for("clear\\x1b[2Jscreen")
        assert "simulator (sim)" in screen  # the rest of the screen is still there
        tmux("send-keys", "-t", "tui", "enter")
        details = tmux.wait_for("Retry (r)")  # the last parameter row: the details are shown
        assert "clear\\x1b[2Jscreen\\x07" in details
    finally:
        session.close()
