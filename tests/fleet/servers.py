"""``veotui serve`` processes of a fleet for tests: each reads its output in threads (so a
chatty server never blocks on a full pipe) and is stopped by its PID."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx

from tests.server.harness import server_env
from tests.support.waiting import wait_until

FLEET_LINE = re.compile(r"fleet: this server (\w+);")


def fleet_env(data_dir: Path, url: str, **extra: str) -> dict[str, str]:
    """A fleet member's environment: the shared data directory and database, short leases."""
    return server_env(
        data_dir,
        **{"VEOTUI_STORE": url, "VEOTUI_LEASE_SECONDS": "1.5", "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD": "off", **extra},
    )


class FleetServer:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "veotui", "serve", "--port", "0"],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.process.pid
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=_drain, args=(stream, lines), daemon=True).start()
        self.url = ""
        self.server_id = ""

    def ready(self, timeout: float = 60.0) -> FleetServer:
        """Until it serves and has printed its fleet line."""

        def started() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"veotui serve exited {self.process.returncode}: {''.join(self.err)[-2000:]}")
            return any(FLEET_LINE.search(line) for line in self.out)

        wait_until(started, timeout, what="veotui serve to start")
        self.url = next(line.split()[-1] for line in self.out if line.startswith("veotui serves "))
        self.server_id = next(m.group(1) for line in self.out if (m := FLEET_LINE.search(line)))
        return self

    def serving(self, timeout: float = 60.0) -> FleetServer:
        """Until it serves (a server on SQLite prints no fleet line)."""

        def started() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"veotui serve exited {self.process.returncode}: {''.join(self.err)[-2000:]}")
            return any(line.startswith("veotui serves ") for line in self.out)

        wait_until(started, timeout, what="veotui serve to start")
        self.url = next(line.split()[-1] for line in self.out if line.startswith("veotui serves "))
        return self

    @property
    def banner(self) -> str:
        return "".join(self.out)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, trust_env=False, timeout=30)

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self) -> int:
        """A clean stop (SIGTERM), or SIGKILL if it does not end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case it was stopped
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def _drain(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
