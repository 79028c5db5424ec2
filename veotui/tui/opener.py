"""Open a video with the system's player, or say plainly why it cannot be done here."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path


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


async def open_with_player(command: list[str]) -> int:
    """Run the opener detached from the terminal (it never writes over the TUI) and return
    its exit status. ``xdg-open`` and ``open`` hand the file to the player and return; a
    player they start keeps running in its own session after veotui quits."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    return await process.wait()
