"""Real servers for tests: uvicorn on a free loopback port, in this event loop, in a thread
of its own (for sync code: hypothesis, CLI subprocesses), or as a ``veotui serve`` process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from veotui.server.running import Running, running_server
from veotui.settings import Settings

URL_LINE = re.compile(r"^veotui serves (http://\S+)$")


@contextmanager
def server_thread(settings: Settings, *, keepalive: float = 15.0, host: str = "127.0.0.1") -> Iterator[Running]:
    """The real server on its own event loop in a thread; stopped and joined on exit."""
    ready = threading.Event()
    running: Running | None = None
    error: BaseException | None = None
    stopping: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    async def main() -> None:
        nonlocal running, error, stopping
        stop = asyncio.Event()
        stopping = (asyncio.get_running_loop(), stop)
        try:
            async with running_server(settings, host, keepalive=keepalive) as started:
                running = started
                ready.set()
                await stop.wait()
        except BaseException as exc:
            error = exc
            ready.set()
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="veotui-test-server", daemon=True)
    thread.start()
    ready.wait(30)
    if running is None or stopping is None:
        thread.join(5)
        raise RuntimeError(f"the test server did not start: {error!r}")
    loop, stop = stopping
    try:
        yield running
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        assert not thread.is_alive(), "the test server did not stop"


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``veotui`` subprocess on the simulator, with fast timings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEOTUI_", "GOOGLE_"))}
    env.update(
        {
            "VEOTUI_DATA_DIR": str(data_dir),
            "VEOTUI_GENERATOR": "sim",
            "VEOTUI_SIM_SECONDS": "0.3",
            "VEOTUI_POLL_INTERVAL": "0.05",
            "VEOTUI_RETRY_BASE_SECONDS": "0.01",
            "VEOTUI_CONFIG": "/nonexistent/veotui-test-config.toml",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class ServeProcess:
    """``python -m veotui serve --port 0`` as a real process; ``url`` once it accepts."""

    def __init__(self, env: Mapping[str, str], *args: str, module: str = "veotui", umask: int = -1) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--port", "0", *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            umask=umask,
        )
        self.url = self._read_url()

    def _read_url(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = URL_LINE.match(line.strip())
            if match:
                return match.group(1)
        self.kill()
        stderr = self.process.stderr.read() if self.process.stderr else ""
        raise RuntimeError(f"veotui serve printed no URL; stderr: {stderr}")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read()
