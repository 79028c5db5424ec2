"""What a new operator sees at 80×24 in a real terminal (tmux on a private socket), with the
real ``veotui`` console script talking to a real server: the header gives way by importance,
queue positions of 100 and more show whole, an ended job is told on the Processing line
instead of a toast over the panels, and the details screen shows the pictures without a
scroll."""

from __future__ import annotations

import base64
import io
import re
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from tests.tui.test_tmux import Tmux, tmux_session
from veotui.settings import load_settings

pytestmark = pytest.mark.slow

COLUMNS, ROWS = 80, 24
REASON = "client review at 4pm"


@pytest.fixture
def server(tmp_path: Path):
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "server")})
    with server_thread(settings, keepalive=0.5) as running:
        with httpx.Client(base_url=running.url, timeout=30) as client:
            yield running.url, client


@pytest.fixture
def screen80(tmp_path: Path, server):
    url, _ = server
    session = tmux_session(tmp_path, "--remote", url, size=(COLUMNS, ROWS))
    tmux = next(session)
    try:
        yield tmux
    finally:
        session.close()


def wait_screen(tmux: Tmux, ok, what: str, timeout: float = 120.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = tmux.screen().splitlines()
        if ok(lines):
            return lines
        if time.monotonic() > deadline:
            pytest.fail(f"never saw {what}:\n" + "\n".join(lines))
        time.sleep(0.1)


def focus_panel(tmux: Tmux, title: str) -> None:
    """Tab until the panel titled ``title`` has the heavy border of the active one."""
    for _ in range(4):
        if any(line.startswith(f"┏━ {title}") for line in tmux.screen().splitlines()):
            return
        tmux("send-keys", "-t", "tui", "Tab")
        time.sleep(0.3)
    wait_screen(tmux, lambda lines: any(line.startswith(f"┏━ {title}") for line in lines), f"{title} active", 10)


def submit(client: httpx.Client, prompt: str, **fields) -> str:
    response = client.post("/api/generate", json={"prompt": prompt, **fields})
    response.raise_for_status()
    return response.json()["job_id"]


def test_a_pause_from_another_client_leads_the_header_and_positions_past_99_show_whole(server, screen80: Tmux):
    _, client = server
    wait_screen(screen80, lambda lines: "slots" in lines[0], "the header")
    client.post("/api/queue/pause", json={"reason": REASON}).raise_for_status()
    lines = wait_screen(screen80, lambda lines: REASON in lines[0], "the pause in the header")
    header = lines[0]
    assert len(header) <= COLUMNS
    # The state first, then slots and queue; the location gives way.
    assert header.index("paused") < header.index("slots") < header.index("queue")

    for n in range(120):
        submit(client, f"shot {n}")
    lines = wait_screen(screen80, lambda lines: "queue 120" in lines[0], "the long queue in the header")
    assert REASON in lines[0]

    focus_panel(screen80, "In Queue")
    screen80("send-keys", "-t", "tui", "End")
    # The position is the whole number under the column's words, never "Queue position: 1…".
    lines = wait_screen(
        screen80, lambda lines: any(re.match(r"^[│┃] 120 +[0-9a-f]{8} ", line) for line in lines), "position 120"
    )
    assert any(line.startswith(("│ Queue position ", "┃ Queue position ")) for line in lines)
    assert sum(bool(re.match(r"^[│┃] 1[01]\d +[0-9a-f]{8} ", line)) for line in lines) >= 3


def test_ended_jobs_are_told_on_the_processing_line_not_in_toasts_over_the_panels(server, screen80: Tmux):
    _, client = server
    wait_screen(screen80, lambda lines: "History" in "".join(lines), "the panels")
    first, second = (submit(client, f"harbour at dusk {n}") for n in (1, 2))
    lines = wait_screen(
        screen80,
        lambda lines: "History 1–2 of 2" in "".join(lines) and "completed" in "".join(lines[1:8]),
        "both jobs in History and the completion on the Processing line",
    )
    processing_line = next(line for line in lines if "completed" in line and line.startswith("╰"))
    assert second[:8] in processing_line or first[:8] in processing_line
    text = "\n".join(lines)
    assert "Completed" not in text  # no toast
    assert f"{first[:8]}" in text and f"{second[:8]}" in text  # both History rows stay in view


def png(color: str, size: tuple[int, int] = (64, 36)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_the_details_screen_shows_the_pictures_without_a_scroll(server, screen80: Tmux):
    _, client = server
    wait_screen(screen80, lambda lines: "History" in "".join(lines), "the panels")
    job = submit(client, "a door swings open onto the sea", image_base64=png("teal"))
    wait_screen(screen80, lambda lines: job[:8] in "".join(lines) and "✓ completed" in "".join(lines), "the job done")
    focus_panel(screen80, "History")
    screen80("send-keys", "-t", "tui", "Enter")
    # First, and sized to the room: wider than the old fixed 24 columns.
    lines = wait_screen(
        screen80,
        lambda lines: "Pictures" in "".join(lines[:4]) and widest_picture(lines) > 30,
        "the pictures first and sized to the screen",
    )
    assert sum("▀" in line for line in lines) >= 6


def widest_picture(lines: list[str]) -> int:
    return max((len(run) for line in lines for run in re.findall(r"[▀▄]{4,}", line)), default=0)
