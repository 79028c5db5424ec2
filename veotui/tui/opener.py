"""Open a video with the system's player, or say plainly why it cannot be done here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping


def player_command(path: Path, env: Mapping[str, str] | None = None, platform: str | None = None) -> list[str] | str:
    """The command that opens ``path``, or a sentence saying why there is none."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if platform == "darwin":
        return ["open", str(path)]
    if platform.startswith("win"):
        return ["cmd", "/c", "start", "", str(path)]
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return f"No display here (an SSH session?), so no player can open it. The video is at {path}"
    opener = shutil.which("xdg-open", path=env.get("PATH"))
    if opener is None:
        return f"xdg-open is not installed, so no player can open it. The video is at {path}"
    return [opener, str(path)]


def open_with_player(command: list[str]) -> None:
    """Start the player detached: it outlives nothing of ours and never writes on the TUI."""
    subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
