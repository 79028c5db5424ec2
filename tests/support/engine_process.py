"""Run the engine (LocalBackend on the simulator) in a process of its own until killed.

Used by the crash tests: ``python -m tests.support.engine_process``. Settings come from the
VEOTUI_* environment. With VEOTUI_TEST_SLOW set, the simulator lingers in each stage (upload,
between sending a submit and returning its answer, download) so a SIGKILL lands inside them.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import anyio

from veotui.backend.local import LocalBackend
from veotui.core.job import Job
from veotui.generators.base import GenerationResult, JobInputs
from veotui.generators.sim import SimGenerator
from veotui.settings import load_settings


class SlowSimGenerator(SimGenerator):
    def __init__(self, root: Path, seconds: float, linger: float) -> None:
        super().__init__(root, seconds)
        self.linger = linger

    async def upload_inputs(self, job: Job, inputs: JobInputs) -> JobInputs:
        await anyio.sleep(self.linger)
        return inputs

    async def submit(self, job: Job, inputs: JobInputs) -> str:
        name = await super().submit(job, inputs)
        await anyio.sleep(self.linger)  # the operation exists; its name is not recorded yet
        return name

    async def fetch(self, job: Job, result: GenerationResult, dest: Path) -> list[Path]:
        await anyio.sleep(self.linger)
        return await super().fetch(job, result, dest)


async def main() -> None:
    settings = load_settings()
    linger = float(os.environ.get("VEOTUI_TEST_SLOW", "0") or 0)
    generator = SlowSimGenerator(settings.sim_dir, settings.sim_seconds, linger) if linger else None
    async with LocalBackend(settings, generator=generator, env={}):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        anyio.run(main)
    except Exception as exc:  # report like the CLI does: one line, exit 1
        print(f"engine_process: {exc}", file=sys.stderr)
        sys.exit(1)
