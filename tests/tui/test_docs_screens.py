"""The screen README.md and docs/tui.md show a newcomer is the one the TUI draws today: the
80×24 snapshot, which tests/tui/test_snapshots.py checks against the running app. The
README's key list says what ``s`` leads to, with the default delay, and where saved videos go
holds."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import pytest

from tests.support.env import FAST_ENV
from veotui.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "tests" / "tui" / "__snapshots__" / "test_snapshots" / "test_main_screen_80x24.svg"
#: One run of text in Rich's SVG export: its x position and its line.
TEXT = re.compile(
    r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" clip-path="url\(#[^)]*-line-(\d+)\)">(.*?)</text>'
)
CELL_WIDTH = 12.2  # Rich's SVG export: pixels per column


def snapshot_lines() -> list[str]:
    rows: dict[int, list[tuple[float, str]]] = {}
    for match in TEXT.finditer(SNAPSHOT.read_text(encoding="utf-8")):
        rows.setdefault(int(match.group(2)), []).append((float(match.group(1)), html.unescape(match.group(3))))
    lines = []
    for number in sorted(rows):
        line = ""
        for x, text in sorted(rows[number]):
            line = line.ljust(round(x / CELL_WIDTH)) + text
        lines.append(line.replace("\xa0", " ").rstrip())
    return lines


def first_screen_sample(path: Path) -> list[str]:
    """The first fenced block of ``path`` that starts with the header line."""
    for block in re.findall(r"^```\n(.*?)^```$", path.read_text(encoding="utf-8"), flags=re.S | re.M):
        if block.startswith(" veotui "):
            return [line.rstrip() for line in block.splitlines()]
    pytest.fail(f"{path.name} shows no screen")


@pytest.mark.parametrize("doc", ["README.md", "docs/tui.md"])
def test_the_screen_sample_is_todays_80x24_screen(doc):
    lines = snapshot_lines()
    assert len(lines) == 24 and lines[0].startswith(" veotui  slots")
    assert first_screen_sample(ROOT / doc) == lines


def test_the_readme_says_a_save_deletes_the_job_and_when():
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    delay = next(f.default for f in dataclasses.fields(Settings) if f.name == "auto_delete_after_download")
    assert f"`s` save the videos to your downloads folder (the engine then deletes the job {delay:g} s later" in text
    assert "`VEOTUI_DOWNLOADS_DIR` sets another" in text


def test_downloads_go_where_veotui_downloads_dir_says_not_under_the_data_directory(tmp_path):
    data = {**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "data")}
    assert not load_settings(env=data).downloads_dir.is_relative_to(tmp_path / "data")
    chosen = load_settings(env={**data, "VEOTUI_DOWNLOADS_DIR": str(tmp_path / "videos" / "veo")})
    assert chosen.downloads_dir == tmp_path / "videos" / "veo"
